"""Type checks for arguments of public helpers (bottom layer: imports nothing from omnilab).

``bool`` is a subclass of ``int`` in Python, so ``isinstance(True, int)`` holds; none of omnilab's counts,
limits or durations accepts ``True``. These predicates say it once; callers keep their own messages.
"""

from __future__ import annotations

import math
import numbers
from typing import TypeGuard

__all__ = ["is_int", "is_integral", "is_number"]


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_integral(value: object) -> TypeGuard[numbers.Integral]:
    """A whole number (``int`` or a numpy integer) that is not a ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object, *, finite: bool = False) -> TypeGuard[float]:
    """An ``int`` or ``float`` that is not a ``bool`` (with ``finite=True``: not NaN or infinite either)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not finite or math.isfinite(value)

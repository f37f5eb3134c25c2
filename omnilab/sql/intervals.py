"""The 95 % Wilson interval the analytics queries attach to every success rate (statsmodels, vectorized).

It sits with the queries that use it; the tests and comparisons built on top of it are in
:mod:`omnilab.analysis.statistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from omnilab.errors import InvalidInput

__all__ = ["wilson_interval", "with_rate_interval", "check_counts"]


def check_counts(values: Any, what: str) -> np.ndarray:
    """Counts as a float array (NaN = unknown); InvalidInput for negatives, fractions or 2-d input."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be numbers, got {values!r}") from exc
    if arr.ndim > 1:
        raise InvalidInput(f"{what} must be a number or a 1-d sequence")
    known = arr[~np.isnan(arr)]  # NaN (an unknown count) gives no interval, it is not an error
    if np.any(known < 0) or np.any(known != np.floor(known)):
        raise InvalidInput(f"{what} must be whole numbers >= 0")
    return arr


def wilson_interval(
    successes: Any, trials: Any, *, confidence: float = 0.95, scale: float = 100.0
) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of ``successes / trials`` times ``scale``: arrays ``(low, high)``.

    NaN where ``trials`` is 0 or a count is NaN (no outcome, no interval). ``successes`` and ``trials``
    are counts (numbers or 1-d sequences of equal length); ``successes > trials`` raises
    :class:`InvalidInput`.
    """
    from statsmodels.stats.proportion import proportion_confint

    k, n = check_counts(successes, "successes"), check_counts(trials, "trials")
    if k.shape != n.shape:
        raise InvalidInput(f"successes and trials differ in length ({k.size} vs {n.size})")
    both = ~np.isnan(k) & ~np.isnan(n)
    if np.any(k[both] > n[both]):
        raise InvalidInput("successes cannot exceed trials")
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1, got {confidence!r}")
    has = both & (n > 0)
    low, high = np.full(k.shape, np.nan), np.full(k.shape, np.nan)
    if np.any(has):
        lo, hi = proportion_confint(k[has], n[has], alpha=1 - confidence, method="wilson")
        low[has], high[has] = np.clip(lo, 0, 1) * scale, np.clip(hi, 0, 1) * scale
    return low, high


def with_rate_interval(
    frame: pd.DataFrame,
    *,
    successes: str = "successful_tasks",
    failures: str = "failed_tasks",
    rate: str = "success_rate",
    scale: float = 100.0,
) -> pd.DataFrame:
    """``frame`` with ``<rate>_low`` and ``<rate>_high`` inserted right after ``rate``: the Wilson interval of
    ``successes / (successes + failures)`` (the runs with a known outcome), in the unit of ``rate``."""
    wins = frame[successes].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    fails = frame[failures].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    low, high = wilson_interval(wins, wins + fails, scale=scale)
    out = frame.copy()
    at = list(out.columns).index(rate) + 1
    out.insert(at, f"{rate}_low", low)
    out.insert(at + 1, f"{rate}_high", high)
    return out

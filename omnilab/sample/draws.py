"""Small helpers the sample's table builders share: seeded ids and the generator's time representation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np

__all__ = ["new_uuid", "naive", "seconds", "maybe"]


def new_uuid(rng: np.random.Generator) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic for the seed)."""
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def naive(t: dt.datetime) -> np.datetime64:
    """An aware datetime as naive-UTC datetime64[us] (the generator's internal time representation)."""
    return np.datetime64(t.astimezone(dt.timezone.utc).replace(tzinfo=None), "us")


def seconds(x: np.ndarray | float) -> np.ndarray:
    """Seconds as timedelta64[us]."""
    return (np.asarray(x) * 1e6).astype("timedelta64[us]")


def maybe(values: Any, keep: np.ndarray) -> list[Any]:
    """``values`` where ``keep``, None elsewhere."""
    return [v if k else None for v, k in zip(values, keep)]

"""Reading memories to ingest: a DataFrame, an iterable of dicts, or a ``.jsonl``/``.csv`` path, in batches.

Rows are plain dicts with memory_entries columns plus an optional ``embedding`` (a precomputed vector, as
a list, a numpy array or JSON text).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omnilab._checks import is_int
from omnilab.errors import InvalidInput

__all__ = ["iter_batches", "check_vector"]


def _frame_rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    cols = [str(c) for c in frame.columns]
    for rec in frame.itertuples(index=False, name=None):
        yield {c: (None if _missing(v) else v) for c, v in zip(cols, rec)}


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"{path.name} line {lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
                ) from exc
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except RecursionError as exc:
                raise InvalidInput(f"{path.name} line {lineno}: JSON nests too deep") from exc
            except ValueError as exc:
                raise InvalidInput(f"{path.name} line {lineno}: not valid JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise InvalidInput(f"{path.name} line {lineno}: expected a JSON object")
            yield row


def _csv_rows(path: Path, batch_size: int) -> Iterator[dict[str, Any]]:
    try:
        reader = pd.read_csv(path, chunksize=batch_size, dtype=str, keep_default_na=False)
        for chunk in reader:
            for row in _frame_rows(chunk):
                # CSV cells are text: empty means missing, JSON columns and numbers are parsed later
                yield {k: _csv_value(k, v) for k, v in row.items() if v not in ("", None)}
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name}: cannot read CSV ({exc})") from exc


def _csv_value(key: str, value: str) -> Any:
    if key in ("priority", "access_count"):
        try:
            return int(value)
        except ValueError:
            return value  # validation names the bad row
    if key in ("tags", "metadata", "embedding"):
        return value  # JSON text: validated/decoded downstream
    return value


def iter_batches(data: Any, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of row dicts from any supported source."""
    if not is_int(batch_size) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
    rows: Iterable[dict[str, Any]]
    if isinstance(data, pd.DataFrame):
        rows = _frame_rows(data)
    elif isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise InvalidInput(f"no such file: {path}")
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            rows = _jsonl_rows(path)
        elif path.suffix.lower() == ".csv":
            rows = _csv_rows(path, batch_size)
        else:
            raise InvalidInput(f"{path.name}: ingest reads .jsonl or .csv files")
    elif isinstance(data, Mapping):
        rows = [dict(data)]
    elif isinstance(data, Iterable) and not isinstance(data, (bytes, str)):
        rows = data
    else:
        raise InvalidInput(
            f"ingest takes a DataFrame, an iterable of dicts or a .jsonl/.csv path, not {type(data).__name__}"
        )
    it = iter(rows)
    while True:
        batch = list(itertools.islice(it, batch_size))
        if not batch:
            return
        for i, row in enumerate(batch):
            if not isinstance(row, Mapping):
                raise InvalidInput(f"row {i}: expected a dict, got {type(row).__name__}")
        yield [dict(r) for r in batch]


def check_vector(value: Any, dim: int, where: str) -> np.ndarray:
    """A precomputed embedding as an L2-normalized (dim,) float32 vector, or ``InvalidInput``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"{where}: embedding text is not a JSON list") from exc
    try:
        vec = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: embedding is not a list of numbers") from exc
    if vec.ndim != 1 or vec.shape[0] != dim:
        raise InvalidInput(f"{where}: embedding has shape {vec.shape}, the lab's embedder has dimension {dim}")
    squares = float(vec.dot(vec))  # also the finiteness test: inf or nan if any value is (one pass, on every search)
    if 0.0 < squares < math.inf:
        return vec / math.sqrt(squares)  # the same float32 result as dividing by np.linalg.norm(vec)
    if not np.isfinite(vec).all():
        raise InvalidInput(f"{where}: embedding has non-finite values")
    if not vec.any():
        raise InvalidInput(f"{where}: embedding is the zero vector")
    wide = vec.astype(np.float64)  # squares overflow or underflow in float32
    return (wide / np.linalg.norm(wide)).astype(np.float32)


_SIMPLE_TEXT = {"id": 50, "agent_id": 50, "session_id": 50, "project_id": 50}
_DATETIMES = ("last_accessed", "expires_at", "created_at", "updated_at")


def fast_memory_rows(rows: list[dict[str, Any]], memory_types: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """Validated memory rows for the common shapes (plain str/int/list/dict values), or None.

    ``None`` means "not simple": the caller falls back to the general row validation, which gives the
    same result (and the detailed error) for every shape. This path exists because ingest is dominated
    by per-value validation otherwise.
    """
    import datetime as dt
    import uuid

    now = dt.datetime.now(dt.timezone.utc)
    out = []
    allowed = set(_SIMPLE_TEXT) | {
        "content",
        "memory_type",
        "priority",
        "tags",
        "metadata",
        "access_count",
        *_DATETIMES,
    }
    for row in rows:
        if not row.keys() <= allowed:
            return None
        content, mtype = row.get("content"), row.get("memory_type")
        if type(content) is not str or "\x00" in content or mtype not in memory_types:
            return None
        prio = row.get("priority", 5)
        prio = 5 if prio is None else prio
        if type(prio) is not int or not 1 <= prio <= 10:
            return None
        clean = {"content": content, "memory_type": mtype, "priority": prio}
        for name, length in _SIMPLE_TEXT.items():
            v = row.get(name)
            if v is not None and (type(v) is not str or len(v) > length or "\x00" in v):
                return None
            clean[name] = v
        if clean["id"] is None:
            clean["id"] = str(uuid.uuid4())
        tags = row.get("tags")
        tags = [] if tags is None else tags
        meta = row.get("metadata")
        meta = {} if meta is None else meta
        if type(tags) is not list or not all(type(t) is str and _plain_json(t) for t in tags) or type(meta) is not dict:
            return None
        if not _plain_json(meta):
            return None
        clean["tags"], clean["metadata"] = list(tags), meta
        ac = row.get("access_count", 0)
        if type(ac) is not int or ac < 0:
            return None
        clean["access_count"] = ac
        for name in _DATETIMES:
            v = row.get(name)
            if v is not None and not (isinstance(v, dt.datetime) and v.tzinfo is not None):
                return None
            clean[name] = v
        clean["created_at"] = clean["created_at"] or now
        clean["updated_at"] = clean["updated_at"] or now
        out.append(clean)
    return out


def _plain_json(value: Any, depth: int = 0) -> bool:
    """True for JSON-ready values made of dict/list/str/int/float(finite)/bool/None."""
    t = type(value)
    if t is str:  # NUL and lone surrogates: the general validation names the row
        return "\x00" not in value and (value.isascii() or _encodable(value))
    if t is int or t is bool or value is None:
        return True
    if t is float:
        return math.isfinite(value)
    if depth > 20:
        return False
    if t is dict:
        return all(type(k) is str and _plain_json(k) and _plain_json(v, depth + 1) for k, v in value.items())
    if t is list:
        return all(_plain_json(v, depth + 1) for v in value)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""The platform's cross-store transaction log: ``transaction:<id>`` = JSON ``{status, operations}`` (TTL 1 h).

>>> with transaction(conn, [{"op": "insert", "table": "memory_entries", "ids": ids}]) as tx_id:
...     ...  # the SQL write, then the vector index and caches

The key says ``started`` before the block runs, then ``completed``, or ``rolled_back`` if the block raised (the
exception is re-raised). Platform layout: ``transaction:<uuid>``; omnilab layout: ``<prefix>transaction:<uuid>``.
The log is a record, not a lock: with ``strict=False`` (default) a Redis outage is logged and the block still
runs (``tx_id`` is then ``None``), because SQL stays the truth; ``strict=True`` raises before the block instead.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from omnilab.errors import InvalidInput, OmnilabError, StoreUnavailable
from omnilab.sessions.connection import RedisConnection, dumps, loads

__all__ = ["transaction", "read_transaction", "TRANSACTION_TTL"]

log = logging.getLogger(__name__)

TRANSACTION_TTL = 3600


def _key(conn: RedisConnection, tx_id: str) -> str:
    return "transaction:" + tx_id if conn.platform else conn.key("transaction", tx_id)


def _write(conn: RedisConnection, key: str, status: str, operations: list[Any]) -> None:
    text = dumps({"status": status, "operations": operations})
    conn.run(lambda r: r.set(key, text, ex=TRANSACTION_TTL), "transaction log")


@contextlib.contextmanager
def transaction(conn: RedisConnection, operations: Sequence[Any], *, strict: bool = False) -> Iterator[str | None]:
    """Log ``operations`` (a JSON-able list) as one transaction around the block; yields its id."""
    conn.check_writable("writing the transaction log")
    if isinstance(operations, (str, bytes)) or not isinstance(operations, Sequence):
        raise InvalidInput(f"operations must be a list, got {type(operations).__name__}")
    ops = list(operations)
    dumps(ops)  # JSON-able, checked before anything runs
    new_id = str(uuid.uuid4())
    key = _key(conn, new_id)
    tx_id: str | None = new_id
    try:
        _write(conn, key, "started", ops)
    except (StoreUnavailable, OmnilabError) as exc:
        if strict:
            raise
        log.warning("transaction log unavailable, running without it: %s", exc)
        tx_id = None
    try:
        yield tx_id
    except BaseException:
        _finish(conn, key, tx_id, "rolled_back", ops)
        raise
    _finish(conn, key, tx_id, "completed", ops)


def _finish(conn: RedisConnection, key: str, tx_id: str | None, status: str, ops: list[Any]) -> None:
    if tx_id is None:
        return
    try:
        _write(conn, key, status, ops)
    except (StoreUnavailable, OmnilabError) as exc:  # never mask the block's own outcome
        log.warning("transaction %s is %s, but the log could not say so: %s", tx_id, status, exc)


def read_transaction(conn: RedisConnection, tx_id: str) -> dict[str, Any] | None:
    """The logged ``{status, operations}`` of a transaction, or ``None`` (unknown or expired)."""
    if not isinstance(tx_id, str) or not tx_id:
        raise InvalidInput(f"transaction id must be a non-empty string, got {tx_id!r}")
    key = _key(conn, tx_id)
    return loads(conn.run(lambda r: r.get(key), "transaction log"))

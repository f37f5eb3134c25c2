"""A lab's identity, and the Redis namespace it gives the lab.

Every lab database records a random, stable id in ``lab_meta`` (key ``"lab_id"``; for a lab attached
read-only, in the lab directory's own database). A lab is that database plus a Redis namespace:

* the default prefix ``omnilab:`` becomes ``omnilab:<lab id>:``, so labs on one Redis server never see
  each other's sessions, caches or queues, while every ``Lab`` opened on the same database (a team lab)
  shares them; the lab's identity is the database's id.
* an explicit prefix is used as given; the lab's identity is ``<database id>:<prefix>``, so two prefixes on
  one database are two labs (neither recovers nor leases the other's tasks). A prefix belongs to one
  database: the first lab to use it records its database id under ``<prefix>lab``, and a lab on another
  database is refused with :class:`ConfigError`.

The identity is written into the rows a lab queues (``tasks.lab_id``) and into its search-cache keys.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from omnilab.errors import ConfigError, StoreUnavailable
from omnilab.sql.engine import insert_on_conflict
from omnilab.sql.types import utcnow

__all__ = ["DEFAULT_PREFIX", "OWNER_KEY", "database_lab_id", "namespace"]

#: the default ``redis_prefix``: it is made unique per lab (``omnilab:<lab id>:``)
DEFAULT_PREFIX = "omnilab:"
#: where, under a prefix, the database id of the lab owning that prefix is recorded
OWNER_KEY = "lab"
_META_KEY = "lab_id"
_MAX_ID = 200  # tasks.lab_id is VARCHAR(200)


def database_lab_id(engine: sa.Engine) -> str:
    """The id recorded in ``lab_meta`` of ``engine``'s database, created on first use (race-free: the first
    writer wins and everyone reads its value back)."""
    from omnilab.sql.own_tables import lab_meta

    select = sa.select(lab_meta.c.value).where(lab_meta.c.key == _META_KEY)
    try:
        with engine.connect() as conn:
            found = conn.execute(select).scalar_one_or_none()
        if found:
            return str(found)
        with engine.begin() as conn:
            conn.execute(
                insert_on_conflict(conn, lab_meta)
                .values(key=_META_KEY, value=uuid.uuid4().hex, counter=0, updated_at=utcnow())
                .on_conflict_do_nothing()
            )
            return str(conn.execute(select).scalar_one())
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"cannot read the lab id from the database: {exc.orig}") from exc


def namespace(database_id: str, prefix: str) -> tuple[str, str]:
    """(the Redis key prefix, the lab's identity) for a database id and the configured ``redis_prefix``."""
    if prefix == DEFAULT_PREFIX:
        return f"{DEFAULT_PREFIX}{database_id}:", database_id
    identity = f"{database_id}:{prefix}"
    if len(identity) > _MAX_ID:
        raise ConfigError(
            f"redis_prefix is too long ({len(prefix)} characters; at most {_MAX_ID - len(database_id) - 1})"
        )
    return prefix, identity

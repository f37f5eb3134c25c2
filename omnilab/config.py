"""Settings: a frozen dataclass, built from keyword arguments or ``OMNILAB_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omnilab._text import redact_url
from omnilab.errors import ConfigError

__all__ = ["Settings", "DEFAULT_DATA_DIR", "ENV_VARS", "REDIS_LAYOUTS"]

DEFAULT_DATA_DIR = Path("data") / "lab"

#: field name -> environment variable
ENV_VARS = {
    "data_dir": "OMNILAB_DATA_DIR",
    "database_url": "OMNILAB_DATABASE_URL",
    "redis_url": "OMNILAB_REDIS_URL",
    "redis_prefix": "OMNILAB_REDIS_PREFIX",
    "embedder": "OMNILAB_EMBEDDER",
    "index": "OMNILAB_INDEX",
    "read_only": "OMNILAB_READ_ONLY",
    "redis_layout": "OMNILAB_REDIS_LAYOUT",
    "vector_backend": "OMNILAB_VECTOR_BACKEND",
}

#: how Redis keys are named: omnilab's own prefixed keys, or exactly the platform's (redis-layout.md)
REDIS_LAYOUTS = ("omnilab", "platform")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-]+:$")
_INDEX_KINDS = ("flat", "hnsw")
#: where memory vectors are searched: FAISS files in each lab directory, or PostgreSQL's pgvector column
VECTOR_BACKENDS = ("faiss", "pgvector")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where a lab keeps its stores and how it embeds text.

    * ``data_dir`` — the lab directory (created on open).
    * ``database_url`` — SQLAlchemy URL; ``None`` means ``sqlite:///<data_dir>/omnilab.db``.
    * ``redis_url`` — ``redis://``, ``rediss://``, ``unix://`` or ``"embedded"`` (a private server in the lab).
    * ``redis_prefix`` — every Redis key starts with it, so a shared server is safe.
    * ``embedder`` — spec such as ``"hashing"``, ``"hashing:512"``, ``"sentence-transformers"``,
      ``"openai:text-embedding-3-small"``; ``None`` lets the lab choose once and record it. Keyword
      arguments may also pass an ``Embedder`` or an embedding object (LangChain ``Embeddings``).
    * ``index`` — ``"flat"`` (exact) or ``"hnsw"``.
    * ``read_only`` — attach to a database (typically the platform's own) without ever writing to it;
      what omnilab owns for it (embedding cache, vector keys, keyword index) lives in the lab directory.
    * ``redis_layout`` — ``"omnilab"`` (prefixed keys) or ``"platform"`` (the platform's own keys and
      channels, no prefix).
    * ``vector_backend`` — ``"faiss"`` (an index in each lab directory, following SQL) or ``"pgvector"``
      (embeddings in the PostgreSQL database, searched there: needs a PostgreSQL ``database_url`` whose
      server has the pgvector extension).
    """

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    redis_url: str = "embedded"
    redis_prefix: str = "omnilab:"
    embedder: str | Any | None = None
    index: str = "flat"
    read_only: bool = False
    redis_layout: str = "omnilab"
    vector_backend: str = "faiss"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if isinstance(self.read_only, str) and self.read_only.strip().lower() in _TRUE + _FALSE:
            object.__setattr__(self, "read_only", self.read_only.strip().lower() in _TRUE)
        self._check("read_only", isinstance(self.read_only, bool), "must be true or false")
        self._check("redis_layout", self.redis_layout in REDIS_LAYOUTS, f"must be one of {REDIS_LAYOUTS}")
        self._check("data_dir", str(self.data_dir).strip() != "", "must not be empty")
        if self.database_url is not None:
            self._check_database_url(self.database_url)
        self._check(
            "redis_url",
            self.redis_url == "embedded" or self.redis_url.startswith(_REDIS_SCHEMES),
            "must be 'embedded' or start with redis://, rediss:// or unix://",
        )
        self._check(
            "redis_prefix",
            bool(_PREFIX_RE.match(self.redis_prefix)),
            "must be letters, digits, '_', '.', '-' and end with ':' (e.g. 'omnilab:')",
        )
        if isinstance(self.embedder, str):  # an object (Embedder, LangChain, LlamaIndex) is checked by the Lab
            self._check("embedder", self.embedder.strip() != "", "must not be empty")
        self._check("index", self.index in _INDEX_KINDS, f"must be one of {_INDEX_KINDS}")
        self._check("vector_backend", self.vector_backend in VECTOR_BACKENDS, f"must be one of {VECTOR_BACKENDS}")
        if self.vector_backend == "pgvector":
            self._check(
                "vector_backend",
                (self.database_url or "").startswith("postgresql") and not self.read_only,
                "'pgvector' needs a PostgreSQL database_url (and a lab that is not read_only)",
            )

    def __repr__(self) -> str:
        # Settings get printed in notebooks and logs: never show a password from a URL.
        shown = ", ".join(f"{f.name}={_hide_password(getattr(self, f.name))!r}" for f in dataclasses.fields(self))
        return f"Settings({shown})"

    def _check(self, field: str, ok: bool, why: str) -> None:
        if not ok:
            value = getattr(self, field)
            raise ConfigError(f"{field} ({ENV_VARS[field]}) {why}; got {value!r}")

    def _check_database_url(self, url: str) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"database_url ({ENV_VARS['database_url']}) is not a valid URL: {url!r}") from exc
        self._check(
            "database_url",
            parsed.get_backend_name() in ("sqlite", "postgresql"),
            "must be a sqlite:// or postgresql:// URL",
        )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the lab directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'omnilab.db').resolve()}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``OMNILAB_*`` variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[field] = raw.strip()
            elif raw is not None:
                raise ConfigError(f"{var} is set but empty")
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(ENV_VARS)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)


def _hide_password(value: Any) -> Any:
    """A URL with its password replaced by ``***``; anything else unchanged."""
    return redact_url(value) if isinstance(value, str) else value

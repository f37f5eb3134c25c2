"""platform schema: the platform's fifteen tables exactly, omnilab's FAISS keys in memory_vectors

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Rebuilds every platform table in the platform's shape (``data/platform/schema.sql``) and copies the rows
over, on SQLite and PostgreSQL alike: the 0004 tables are set aside as ``_old0004_<name>`` (their indexes
dropped on SQLite, renamed on PostgreSQL), the new tables are created, filled with INSERT ... SELECT, and
the old ones dropped. What changes for existing rows:

- renames: agents.system -> system_name, tasks.title -> content, task_dependencies.depends_on_id ->
  depends_on_task_id, project_files.size_bytes -> size, memory_access.accessed_at -> timestamp;
  workflows.steps -> definition ``{"steps": <old steps>}``; api_usage.response_time_ms -> response_time
  in seconds; tasks.task_type NULL -> 'general'.
- agent_stats: the one row per agent becomes that agent's row for the date of its old ``updated_at``
  (total_execution_time = avg_execution_time * total_tasks; average_response_time = avg_execution_time).
- project_stats: new serial ids; old totals kept in omnilab's extra columns; agents_used counted from
  the project's tasks.
- system_health: cpu/memory/disk percent, active_agents, queue_depth and response_time_ms go into the
  ``metrics`` JSON (merged over the old ``details``; NULL measurements are left out).
- memory_entries: the platform's string id is the old memory_id; the old integer id (the FAISS id and the
  keyword-index rowid) lives on as memory_vectors.id with content_hash/embedding_key, so index files and
  FTS rows stay valid; memory_relationships/memory_access refer to memories by the string id.
- foreign keys lose their ON DELETE actions and the old unique constraints go, as the platform has it.

SQLite runs the whole revision in one transaction (an explicit BEGIN: its driver would otherwise
autocommit DDL); PostgreSQL's DDL is transactional anyway. There is no downgrade.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import omnilab.sql.types
from sqlalchemy.dialects import postgresql

from omnilab.errors import OmnilabError

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD = "_old0004_"

#: the 0004 tables, children before parents (the order they are dropped in)
OLD_TABLES = (
    "task_dependencies",
    "agent_performance",
    "error_logs",
    "agent_stats",
    "memory_relationships",
    "memory_access",
    "memory_entries",
    "project_files",
    "project_stats",
    "api_usage",
    "system_health",
    "tasks",
    "workflows",
    "projects",
    "agents",
)

#: new table -> the 0004 table whose id sequence it continues (PostgreSQL: ids never go backwards)
SEQUENCE_OF = {
    t: t
    for t in (
        "agent_performance",
        "task_dependencies",
        "project_files",
        "memory_relationships",
        "memory_access",
        "system_health",
        "api_usage",
        "error_logs",
    )
}
SEQUENCE_OF["memory_vectors"] = "memory_entries"

_KEYS = ("cpu_percent", "memory_percent", "disk_percent", "active_agents", "queue_depth", "response_time_ms")
_SQLITE = {
    "steps": "json_object('steps', json(o.steps))",
    "date": "date(o.updated_at)",
    # json_patch drops keys whose value is null: first from the measurements, then merge over details
    "metrics": "json_patch(COALESCE(o.details, '{}'), json_patch('{}', json_object("
    + ", ".join(f"'{k}', o.{k}" for k in _KEYS)
    + ")))",
}
_POSTGRES = {
    "steps": "jsonb_build_object('steps', o.steps)",
    "date": "(o.updated_at AT TIME ZONE 'UTC')::date",
    "metrics": "COALESCE(o.details, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object("
    + ", ".join(f"'{k}', o.{k}" for k in _KEYS)
    + "))",
}


def _copies(dialect: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """(new table, FROM clause over the 0004 tables, new column -> SQL expression), parents first."""
    same = lambda *cols: {c: f"o.{c}" for c in cols}  # noqa: E731
    mem = f"{OLD}memory_entries"
    return [
        (
            "agents",
            f"{OLD}agents o",
            {
                **same(
                    "id",
                    "name",
                    "agent_type",
                    "description",
                    "capabilities",
                    "priority",
                    "status",
                    "created_at",
                    "updated_at",
                    "config",
                    "version",
                    "last_active",
                ),
                "system_name": "o.system",
            },
        ),
        (
            "projects",
            f"{OLD}projects o",
            same(
                "id",
                "name",
                "description",
                "language",
                "status",
                "settings",
                "created_at",
                "updated_at",
                "repository_url",
            ),
        ),
        (
            "workflows",
            f"{OLD}workflows o",
            {
                **same(
                    "id",
                    "name",
                    "description",
                    "status",
                    "created_by",
                    "created_at",
                    "updated_at",
                    "project_id",
                    "completed_at",
                ),
                "definition": dialect["steps"],
            },
        ),
        (
            "tasks",
            f"{OLD}tasks o",
            {
                **same(
                    "id",
                    "complexity",
                    "priority",
                    "agent_id",
                    "status",
                    "progress",
                    "result",
                    "error_message",
                    "context",
                    "project_id",
                    "created_at",
                    "started_at",
                    "completed_at",
                    "description",
                    "workflow_id",
                    "retry_count",
                    "estimated_duration",
                    "updated_at",
                ),
                "content": "o.title",
                "task_type": "COALESCE(o.task_type, 'general')",
            },
        ),
        (
            "task_dependencies",
            f"{OLD}task_dependencies o",
            {**same("id", "task_id", "dependency_type", "created_at"), "depends_on_task_id": "o.depends_on_id"},
        ),
        (
            "agent_stats",
            f"{OLD}agent_stats o",
            {
                **same("agent_id", "success_rate"),
                "tasks_completed": "o.completed_tasks",
                "tasks_failed": "o.failed_tasks",
                "total_execution_time": "o.avg_execution_time * o.total_tasks",
                "total_tokens_used": "o.total_tokens",
                "average_response_time": "o.avg_execution_time",
                "date": dialect["date"],
            },
        ),
        (
            "agent_performance",
            f"{OLD}agent_performance o",
            same(
                "id",
                "agent_id",
                "task_type",
                "execution_time",
                "tokens_used",
                "success",
                "timestamp",
                "task_id",
                "error_type",
                "metrics",
            ),
        ),
        (
            "project_files",
            f"{OLD}project_files o",
            {
                **same(
                    "id",
                    "project_id",
                    "file_path",
                    "language",
                    "created_at",
                    "updated_at",
                    "line_count",
                    "content_hash",
                    "last_modified_by",
                ),
                "size": "o.size_bytes",
            },
        ),
        (
            "project_stats",
            f"{OLD}project_stats o",
            {
                **same("project_id", "last_activity", "total_tokens", "avg_task_duration", "updated_at"),
                "files_count": "o.total_files",
                "lines_of_code": "o.total_lines",
                "tasks_completed": "o.completed_tasks",
                "agents_used": f"(SELECT COUNT(DISTINCT t.agent_id) FROM {OLD}tasks t WHERE t.project_id = o.project_id)",
                "tasks_total": "o.total_tasks",
                "tasks_failed": "o.failed_tasks",
            },
        ),
        (
            "memory_entries",
            f"{mem} o",
            {
                **same(
                    "content",
                    "memory_type",
                    "priority",
                    "metadata",
                    "tags",
                    "agent_id",
                    "session_id",
                    "project_id",
                    "created_at",
                    "updated_at",
                    "access_count",
                    "last_accessed",
                    "expires_at",
                ),
                "id": "o.memory_id",
            },
        ),
        (
            "memory_vectors",
            f"{mem} o",
            {**same("id", "memory_type", "content_hash", "embedding_key"), "memory_id": "o.memory_id"},
        ),
        (
            "memory_relationships",
            f"{OLD}memory_relationships o JOIN {mem} s ON s.id = o.source_id JOIN {mem} t ON t.id = o.target_id",
            {
                **same("id", "relationship_type", "strength", "created_at"),
                "source_memory_id": "s.memory_id",
                "target_memory_id": "t.memory_id",
            },
        ),
        (
            "memory_access",
            f"{OLD}memory_access o JOIN {mem} m ON m.id = o.memory_id",
            {
                **same("id", "agent_id", "access_type", "query", "score"),
                "memory_id": "m.memory_id",
                "timestamp": "o.accessed_at",
            },
        ),
        (
            "system_health",
            f"{OLD}system_health o",
            {**same("id", "component", "status", "timestamp"), "metrics": dialect["metrics"]},
        ),
        (
            "api_usage",
            f"{OLD}api_usage o",
            {
                **same(
                    "id",
                    "endpoint",
                    "method",
                    "agent_id",
                    "status_code",
                    "timestamp",
                    "provider",
                    "model",
                    "tokens_used",
                    "cost_usd",
                    "request_id",
                ),
                "response_time": "o.response_time_ms / 1000.0",
            },
        ),
        (
            "error_logs",
            f"{OLD}error_logs o",
            same(
                "id",
                "component",
                "error_type",
                "message",
                "stack_trace",
                "agent_id",
                "severity",
                "timestamp",
                "task_id",
                "context",
                "resolved",
                "resolved_at",
            ),
        ),
    ]


# camelCase and snake_case identifiers split into words, the whole text kept too (as in 0002)
PG_TSV = (
    "to_tsvector('english', content || ' ' || regexp_replace(regexp_replace(regexp_replace(content, "
    "'([a-z0-9])([A-Z])', '\\1 \\2', 'g'), '([A-Z])([A-Z][a-z])', '\\1 \\2', 'g'), '[_\\W]+', ' ', 'g'))"
)


ORDER_BY = {"agent_stats": "o.agent_id", "project_stats": "o.project_id"}  # rows that get new serial ids


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    if not pg:
        raw = bind.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:  # make the DDL part of one transaction with the copies
            bind.exec_driver_sql("BEGIN")
        bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # checked at commit
    old_sequences = _set_aside(bind, pg)
    tables = {t.name: t for t in _create_tables()}
    copies = _copies(_POSTGRES if pg else _SQLITE)
    if pg:
        _check_fit(bind, tables, copies)
    for name, source, columns in copies:
        _copy(bind, name, source, columns)
    for name in OLD_TABLES:
        op.drop_table(OLD + name)
    if pg:
        _continue_sequences(bind, old_sequences)
        bind.exec_driver_sql(
            "ALTER TABLE memory_entries ADD COLUMN IF NOT EXISTS content_tsv tsvector "
            f"GENERATED ALWAYS AS ({PG_TSV}) STORED"
        )
        bind.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_memory_entries_content_tsv ON memory_entries USING gin (content_tsv)"
        )
    else:  # memory_fts keeps its rows: their rowids are the old integer ids, now memory_vectors.id
        bind.exec_driver_sql(
            "CREATE TRIGGER IF NOT EXISTS memory_fts_ad AFTER DELETE ON memory_vectors BEGIN "
            "DELETE FROM memory_fts WHERE rowid = old.id; END"
        )


def downgrade() -> None:
    raise OmnilabError(
        "0005 cannot be downgraded: the platform schema holds the 0004 data in another shape "
        "(string memory ids, per-day agent_stats, metrics JSON); restore a backup made before the "
        "upgrade instead"
    )


def _set_aside(bind: sa.Connection, pg: bool) -> dict[str, int]:
    """Rename the 0004 tables to ``_old0004_*`` and free their index (and sequence) names.

    Returns, on PostgreSQL, table -> the last id its old sequence handed out (0: none).
    """
    sequences: dict[str, int] = {}
    if pg:
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_memory_entries_content_tsv")
    else:  # the keyword triggers on memory_entries give way to the one on memory_vectors
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS memory_fts_ad")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS memory_fts_au")
    n = 0
    for name in OLD_TABLES:
        op.rename_table(name, OLD + name)  # SQLite rewrites the children's REFERENCES to the new name
        if pg:
            q = sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t")
            for (index,) in bind.execute(q, {"t": OLD + name}).all():
                n += 1
                bind.exec_driver_sql(f'ALTER INDEX "{index}" RENAME TO "{OLD}ix{n}"')
            if name in SEQUENCE_OF.values():
                seq = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": OLD + name}).scalar()
                if seq:
                    last = bind.execute(
                        sa.text("SELECT pg_sequence_last_value(CAST(:s AS regclass))"), {"s": seq}
                    ).scalar()  # NULL: it never handed out a value
                    sequences[name] = int(last or 0)
                    bind.exec_driver_sql(f'ALTER SEQUENCE {seq} RENAME TO "{OLD}{name}_id_seq"')
        else:
            q = sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL")
            for (index,) in bind.execute(q, {"t": OLD + name}).all():
                op.drop_index(index)
    return sequences


def _copy(bind: sa.Connection, name: str, source: str, columns: dict[str, str]) -> None:
    """INSERT ... SELECT one table; every old row must arrive (inner joins must not drop any)."""
    order = f" ORDER BY {ORDER_BY[name]}" if name in ORDER_BY else ""
    bind.exec_driver_sql(
        f"INSERT INTO {name} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {source}{order}"
    )
    old_name = source.split()[0]
    count = sa.select(sa.func.count())
    before = bind.execute(count.select_from(sa.table(old_name))).scalar()
    after = bind.execute(count.select_from(sa.table(name))).scalar()
    if before != after:
        raise OmnilabError(
            f"0005: {old_name} has {before} rows but only {after} reached {name} "
            "(rows referring to missing memories?); nothing was changed"
        )


def _check_fit(bind: sa.Connection, tables: dict[str, sa.Table], copies: list[tuple[str, str, dict[str, str]]]) -> None:
    """PostgreSQL enforces the platform's shorter VARCHARs and 32-bit INTEGERs: name every value that would
    not fit, up front, instead of failing half-way or truncating."""
    too_big = []
    for name, source, columns in copies:
        for col, expr in columns.items():
            kind = tables[name].c[col].type
            if isinstance(kind, sa.String) and kind.length:
                measure, limit, what = f"LENGTH(CAST({expr} AS TEXT))", kind.length, f"VARCHAR({kind.length}), longest"
            elif isinstance(kind, sa.Integer) and not isinstance(kind, sa.BigInteger):
                measure, limit, what = f"ABS({expr})", 2**31 - 1, "INTEGER, largest"
            else:
                continue
            top = bind.exec_driver_sql(f"SELECT MAX({measure}) FROM {source}").scalar()
            if top is not None and top > limit:
                too_big.append(f"{name}.{col} ({what} value {top})")
    if too_big:
        raise OmnilabError(
            "0005 cannot move these values into the platform's columns: "
            + ", ".join(too_big)
            + "; change them, then upgrade again (nothing was changed)"
        )


def _continue_sequences(bind: sa.Connection, old: dict[str, int]) -> None:
    """Set each id sequence past the copied ids and past everything the old sequence handed out."""
    for name in (*SEQUENCE_OF, "agent_stats", "project_stats"):
        seq = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name}).scalar()
        top = bind.execute(sa.select(sa.func.max(sa.column("id"))).select_from(sa.table(name))).scalar() or 0
        top = max(int(top), old.get(SEQUENCE_OF.get(name, ""), 0))
        if top > 0:
            bind.execute(sa.text("SELECT setval(:s, :v, true)"), {"s": seq, "v": top})


def _create_tables() -> list[sa.Table]:
    """The platform's tables and memory_vectors, as the models had them at 0005."""
    tables: list[sa.Table] = []
    tables.append(
        op.create_table(
            "agents",
            sa.Column("id", sa.String(length=50), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("agent_type", sa.String(length=50), nullable=False),
            sa.Column("system_name", sa.String(length=50), nullable=False),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column(
                "capabilities",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            ),
            sa.Column("priority", sa.Integer(), server_default=sa.text("5"), nullable=True),
            sa.Column("max_concurrent_tasks", sa.Integer(), server_default=sa.text("1"), nullable=True),
            sa.Column("timeout_seconds", sa.Integer(), server_default=sa.text("300"), nullable=True),
            sa.Column(
                "model_requirements",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            ),
            sa.Column(
                "tags", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("status", sa.String(length=20), server_default=sa.text("'idle'"), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "config", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("version", sa.String(length=32), nullable=True),
            sa.Column("last_active", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        )
    )
    op.create_index("idx_agents_status", "agents", ["status"], unique=False)
    op.create_index("idx_agents_type", "agents", ["agent_type"], unique=False)
    tables.append(
        op.create_table(
            "projects",
            sa.Column("id", sa.String(length=50), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column("language", sa.String(length=50), nullable=True),
            sa.Column("framework", sa.String(length=50), nullable=True),
            sa.Column("status", sa.String(length=20), server_default=sa.text("'active'"), nullable=True),
            sa.Column(
                "settings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("created_by", sa.String(length=50), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("repository_url", sa.String(length=500), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        )
    )
    tables.append(
        op.create_table(
            "system_health",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("component", sa.String(length=50), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column(
                "metrics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("message", sa.Text(), nullable=True),
            sa.Column(
                "timestamp",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_system_health")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_system_health_timestamp", "system_health", ["timestamp"], unique=False)
    tables.append(
        op.create_table(
            "agent_stats",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("agent_id", sa.String(length=50), nullable=False),
            sa.Column("tasks_completed", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("tasks_failed", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("total_execution_time", sa.Float(), server_default=sa.text("0.0"), nullable=True),
            sa.Column("total_tokens_used", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("average_response_time", sa.Float(), server_default=sa.text("0.0"), nullable=True),
            sa.Column("success_rate", sa.Float(), server_default=sa.text("0.0"), nullable=True),
            sa.Column("date", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=True),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_agent_stats_agent_id_agents")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_stats")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_agent_stats_agent_id_date", "agent_stats", ["agent_id", "date"], unique=False)
    tables.append(
        op.create_table(
            "api_usage",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("endpoint", sa.String(length=100), nullable=False),
            sa.Column("method", sa.String(length=10), nullable=False),
            sa.Column("agent_id", sa.String(length=50), nullable=True),
            sa.Column("session_id", sa.String(length=50), nullable=True),
            sa.Column("response_time", sa.Float(), nullable=True),
            sa.Column("status_code", sa.Integer(), nullable=True),
            sa.Column(
                "timestamp",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("provider", sa.String(length=32), nullable=True),
            sa.Column("model", sa.String(length=64), nullable=True),
            sa.Column("tokens_used", sa.Integer(), nullable=True),
            sa.Column("cost_usd", sa.Float(), nullable=True),
            sa.Column("request_id", sa.String(length=64), nullable=True),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_api_usage_agent_id_agents")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_api_usage_timestamp", "api_usage", ["timestamp"], unique=False)
    tables.append(
        op.create_table(
            "memory_entries",
            sa.Column("id", sa.String(length=50), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("memory_type", sa.String(length=50), nullable=False),
            sa.Column("priority", sa.Integer(), server_default=sa.text("5"), nullable=True),
            sa.Column(
                "metadata", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column(
                "tags", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("agent_id", sa.String(length=50), nullable=True),
            sa.Column("session_id", sa.String(length=50), nullable=True),
            sa.Column("project_id", sa.String(length=50), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("access_count", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("last_accessed", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.Column("expires_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_memory_entries_agent_id_agents")),
            sa.ForeignKeyConstraint(
                ["project_id"], ["projects.id"], name=op.f("fk_memory_entries_project_id_projects")
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_entries")),
        )
    )
    op.create_index("idx_memory_entries_created_at", "memory_entries", ["created_at"], unique=False)
    op.create_index("idx_memory_entries_type", "memory_entries", ["memory_type"], unique=False)
    op.create_index("ix_memory_entries_agent_id", "memory_entries", ["agent_id"], unique=False)
    tables.append(
        op.create_table(
            "project_files",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("project_id", sa.String(length=50), nullable=False),
            sa.Column("file_path", sa.String(length=500), nullable=False),
            sa.Column("content", sa.Text(), nullable=True),
            sa.Column("language", sa.String(length=50), nullable=True),
            sa.Column("size", sa.Integer(), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("line_count", sa.Integer(), nullable=True),
            sa.Column("content_hash", sa.String(length=64), nullable=True),
            sa.Column("last_modified_by", sa.String(length=50), nullable=True),
            sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_project_files_project_id_projects")),
            sa.ForeignKeyConstraint(
                ["last_modified_by"], ["agents.id"], name=op.f("fk_project_files_last_modified_by_agents")
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_project_files")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_project_files_project_id", "project_files", ["project_id"], unique=False)
    tables.append(
        op.create_table(
            "project_stats",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("project_id", sa.String(length=50), nullable=False),
            sa.Column("files_count", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("lines_of_code", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("tasks_completed", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("agents_used", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("last_activity", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.Column("tasks_total", sa.Integer(), nullable=True),
            sa.Column("tasks_failed", sa.Integer(), nullable=True),
            sa.Column("total_tokens", sa.BigInteger(), nullable=True),
            sa.Column("avg_task_duration", sa.Float(), nullable=True),
            sa.Column("updated_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_project_stats_project_id_projects")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_project_stats")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_project_stats_project_id", "project_stats", ["project_id"], unique=False)
    tables.append(
        op.create_table(
            "workflows",
            sa.Column("id", sa.String(length=50), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column(
                "definition",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
            ),
            sa.Column("status", sa.String(length=20), server_default=sa.text("'active'"), nullable=True),
            sa.Column("created_by", sa.String(length=50), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("project_id", sa.String(length=50), nullable=True),
            sa.Column("completed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_workflows_project_id_projects")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        )
    )
    tables.append(
        op.create_table(
            "memory_access",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("memory_id", sa.String(length=50), nullable=False),
            sa.Column("agent_id", sa.String(length=50), nullable=True),
            sa.Column("session_id", sa.String(length=50), nullable=True),
            sa.Column("access_type", sa.String(length=20), nullable=False),
            sa.Column(
                "timestamp",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("query", sa.Text(), nullable=True),
            sa.Column("score", sa.Float(), nullable=True),
            sa.ForeignKeyConstraint(
                ["memory_id"], ["memory_entries.id"], name=op.f("fk_memory_access_memory_id_memory_entries")
            ),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_memory_access_agent_id_agents")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_access")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_memory_access_memory_id", "memory_access", ["memory_id"], unique=False)
    op.create_index("ix_memory_access_timestamp", "memory_access", ["timestamp"], unique=False)
    tables.append(
        op.create_table(
            "memory_relationships",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("source_memory_id", sa.String(length=50), nullable=False),
            sa.Column("target_memory_id", sa.String(length=50), nullable=False),
            sa.Column("relationship_type", sa.String(length=50), nullable=False),
            sa.Column("strength", sa.Float(), server_default=sa.text("1.0"), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.ForeignKeyConstraint(
                ["source_memory_id"],
                ["memory_entries.id"],
                name=op.f("fk_memory_relationships_source_memory_id_memory_entries"),
            ),
            sa.ForeignKeyConstraint(
                ["target_memory_id"],
                ["memory_entries.id"],
                name=op.f("fk_memory_relationships_target_memory_id_memory_entries"),
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_relationships")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index(
        "ix_memory_relationships_source_memory_id", "memory_relationships", ["source_memory_id"], unique=False
    )
    op.create_index(
        "ix_memory_relationships_target_memory_id", "memory_relationships", ["target_memory_id"], unique=False
    )
    tables.append(
        op.create_table(
            "tasks",
            sa.Column("id", sa.String(length=50), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("task_type", sa.String(length=50), nullable=False),
            sa.Column("complexity", sa.String(length=20), server_default=sa.text("'medium'"), nullable=True),
            sa.Column("priority", sa.Integer(), server_default=sa.text("5"), nullable=True),
            sa.Column("agent_id", sa.String(length=50), nullable=True),
            sa.Column("status", sa.String(length=20), server_default=sa.text("'pending'"), nullable=True),
            sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column(
                "result", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column(
                "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column(
                "constraints",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            ),
            sa.Column("session_id", sa.String(length=50), nullable=True),
            sa.Column("project_id", sa.String(length=50), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("started_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.Column("completed_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.Column("estimated_completion", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column("workflow_id", sa.String(length=50), nullable=True),
            sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=True),
            sa.Column("estimated_duration", sa.Float(), nullable=True),
            sa.Column(
                "updated_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_tasks_agent_id_agents")),
            sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_tasks_project_id_projects")),
            sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name=op.f("fk_tasks_workflow_id_workflows")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        )
    )
    op.create_index("idx_tasks_agent_id", "tasks", ["agent_id"], unique=False)
    op.create_index("idx_tasks_created_at", "tasks", ["created_at"], unique=False)
    op.create_index("idx_tasks_status", "tasks", ["status"], unique=False)
    op.create_index("ix_tasks_project_id", "tasks", ["project_id"], unique=False)
    tables.append(
        op.create_table(
            "agent_performance",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("agent_id", sa.String(length=50), nullable=False),
            sa.Column("task_type", sa.String(length=50), nullable=True),
            sa.Column("execution_time", sa.Float(), nullable=True),
            sa.Column("tokens_used", sa.Integer(), nullable=True),
            sa.Column("success", sa.Boolean(), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column(
                "timestamp",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("task_id", sa.String(length=50), nullable=True),
            sa.Column("error_type", sa.String(length=64), nullable=True),
            sa.Column(
                "metrics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_agent_performance_agent_id_agents")),
            sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_agent_performance_task_id_tasks")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_performance")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("idx_agent_performance_timestamp", "agent_performance", ["timestamp"], unique=False)
    op.create_index(
        "ix_agent_performance_agent_window",
        "agent_performance",
        ["agent_id", "timestamp", "execution_time", "success", "tokens_used"],
        unique=False,
    )
    tables.append(
        op.create_table(
            "error_logs",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("component", sa.String(length=50), nullable=False),
            sa.Column("error_type", sa.String(length=50), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("stack_trace", sa.Text(), nullable=True),
            sa.Column("agent_id", sa.String(length=50), nullable=True),
            sa.Column("session_id", sa.String(length=50), nullable=True),
            sa.Column("severity", sa.String(length=20), server_default=sa.text("'error'"), nullable=True),
            sa.Column(
                "timestamp",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.Column("task_id", sa.String(length=50), nullable=True),
            sa.Column(
                "context", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            ),
            sa.Column("resolved", sa.Boolean(), server_default=sa.false(), nullable=True),
            sa.Column("resolved_at", omnilab.sql.types.UTCDateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_error_logs_agent_id_agents")),
            sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_error_logs_task_id_tasks")),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_error_logs")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index("ix_error_logs_timestamp", "error_logs", ["timestamp"], unique=False)
    tables.append(
        op.create_table(
            "task_dependencies",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("task_id", sa.String(length=50), nullable=False),
            sa.Column("depends_on_task_id", sa.String(length=50), nullable=False),
            sa.Column("dependency_type", sa.String(length=20), server_default=sa.text("'sequential'"), nullable=True),
            sa.Column(
                "created_at",
                omnilab.sql.types.UTCDateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=True,
            ),
            sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_task_dependencies_task_id_tasks")),
            sa.ForeignKeyConstraint(
                ["depends_on_task_id"], ["tasks.id"], name=op.f("fk_task_dependencies_depends_on_task_id_tasks")
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_task_dependencies")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index(
        "ix_task_dependencies_depends_on_task_id", "task_dependencies", ["depends_on_task_id"], unique=False
    )
    op.create_index("ix_task_dependencies_task_id", "task_dependencies", ["task_id"], unique=False)
    tables.append(
        op.create_table(
            "memory_vectors",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
            sa.Column("memory_id", sa.String(length=50), nullable=False),
            sa.Column("memory_type", sa.String(length=50), nullable=False),
            sa.Column("content_hash", sa.String(length=64), nullable=True),
            sa.Column("embedding_key", sa.String(length=64), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_vectors")),
            sa.UniqueConstraint("memory_id", name=op.f("uq_memory_vectors_memory_id")),
            sqlite_autoincrement=True,
        )
    )
    op.create_index(op.f("ix_memory_vectors_content_hash"), "memory_vectors", ["content_hash"], unique=False)
    return tables

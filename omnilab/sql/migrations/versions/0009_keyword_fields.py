"""keyword fields: name, signature and body, identifiers split into words, on SQLite and PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2027-02-15

The keyword index gets three fields per memory, built by omnilab (:mod:`omnilab.sql.keywords`): the name
and the whole line of a code memory's ``def``/``class`` line and the text, with snake_case, camelCase and
run-together identifiers split into words. SQLite: ``memory_fts`` is recreated as
``fts5(name, signature, body)``. PostgreSQL: the generated ``memory_entries.content_tsv`` column (and its
GIN index) gives way to omnilab's table ``memory_keywords(vector_id, tsv)`` with ``setweight`` per field and
a GIN index. Either way every memory with a key row gets its keyword row again in this transaction.
Downgrade restores the previous objects (and rebuilds the SQLite rows in the old shape).
"""

from typing import Sequence, Union

from alembic import op

from omnilab.sql import keywords

revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# revision 0008's objects: the generated column (as in 0005 / own_tables.PG_TSV) and the FTS5 body's camelCase words
OLD_PG_COLUMN = (
    "ALTER TABLE memory_entries ADD COLUMN IF NOT EXISTS content_tsv tsvector GENERATED ALWAYS AS ("
    "to_tsvector('english', content || ' ' || regexp_replace(regexp_replace(regexp_replace(content, "
    "'([a-z0-9])([A-Z])', '\\1 \\2', 'g'), '([A-Z])([A-Z][a-z])', '\\1 \\2', 'g'), '[_\\W]+', ' ', 'g'))"
    ") STORED"
)
OLD_CAMEL = r"\b[A-Za-z0-9_]*[a-z0-9][A-Z][A-Za-z0-9_]*\b|\b[A-Z]{2,}[a-z][A-Za-z0-9_]*\b"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_memory_entries_content_tsv")
        bind.exec_driver_sql("ALTER TABLE memory_entries DROP COLUMN IF EXISTS content_tsv")
    else:
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS memory_fts_ad")
        bind.exec_driver_sql("DROP TABLE IF EXISTS memory_fts")
    for stmt in keywords.KEYWORD_DDL["postgresql" if bind.dialect.name == "postgresql" else "sqlite"]:
        bind.exec_driver_sql(stmt)
    keywords.rebuild(bind)


def downgrade() -> None:
    import re

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP TABLE IF EXISTS memory_keywords")
        bind.exec_driver_sql(OLD_PG_COLUMN)
        bind.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_memory_entries_content_tsv ON memory_entries USING gin (content_tsv)"
        )
        return
    bind.exec_driver_sql("DROP TRIGGER IF EXISTS memory_fts_ad")
    bind.exec_driver_sql("DROP TABLE IF EXISTS memory_fts")
    bind.exec_driver_sql("CREATE VIRTUAL TABLE memory_fts USING fts5(body, tokenize='porter unicode61')")
    bind.exec_driver_sql(
        "CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory_vectors BEGIN DELETE FROM memory_fts WHERE rowid = old.id; END"
    )
    camel = re.compile(OLD_CAMEL)
    rows = bind.exec_driver_sql(
        "SELECT v.id, m.content FROM memory_vectors v JOIN memory_entries m ON m.id = v.memory_id"
    ).all()
    bodies = []
    for vid, content in rows:
        content = content or ""
        extra = [" ".join(keywords.identifier_words(w)) for w in camel.findall(content)]
        bodies.append((int(vid), content if not extra else content + "\n" + " ".join(extra)))
    if bodies:
        bind.exec_driver_sql("INSERT INTO memory_fts (rowid, body) VALUES (?, ?)", bodies)

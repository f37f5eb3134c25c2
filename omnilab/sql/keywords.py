"""What the keyword index stores for a memory: three fields (name, signature, body), built in Python for both
databases, and the database objects holding them (revision 0009).

* ``name``: the words of the name on the first ``def``/``class``/``function`` line of the text (a code
  memory's function or class name), ``signature``: the words of that whole line (name and parameters),
  ``body``: the whole text. Empty name and signature for text without such a line.
* Identifiers are split into words: snake_case, camelCase (``getHTTPValue`` -> get http value) and
  run-together words (``pvariance`` -> p variance, ``setprofile`` -> set profile, by the cheapest cover with
  the English words of :mod:`omnilab.sql._vocabulary`); the split words are added, the text is kept.

SQLite: the FTS5 table ``memory_fts(name, signature, body)`` (porter + unicode61), rowid = the memory's
vector id, ranked by ``bm25`` with per-field weights. PostgreSQL: the table ``memory_keywords(vector_id,
tsv)`` with a GIN index, ``tsv`` = the fields with ``setweight`` A (name), B (signature) and D (body),
ranked by ``ts_rank`` with per-field weights. Both are written by omnilab in the memory write's transaction
(:func:`omnilab.vectors.hybrid.fts_write`) and dropped with the key row (trigger / foreign key cascade).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import sqlalchemy as sa

__all__ = [
    "FIELDS",
    "identifier_words",
    "split_compound",
    "signature_line",
    "keyword_fields",
    "KEYWORD_DDL",
    "write_rows",
    "rebuild",
]

#: the fields, in the FTS5 column order
FIELDS = ("name", "signature", "body")

_IDENT = re.compile(r"[A-Za-z0-9_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: a code memory's definition line: def / async def / class (Python), function (JS, PHP), func (Go), fn (Rust)
_SIG = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?:pub[ \t]+)?(?:async[ \t]+)?(?:def|class|function|func|fn)[ \t]+"
    r"(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)[ \t]*[(:\[{<][^\n]*",
    re.M,
)
_SIG_WORDS = ("def ", "def\t", "class", "function", "func", "fn ", "fn\t")
# two-letter words that are parts of identifiers often enough (is_dir -> isdir, to_bytes -> tobytes)
_SHORT = frozenset("is to of in at on by as up".split())
# programming words the English vocabulary lacks: without them "parse" became "par se", "kwargs" "war gs"
_CODE_WORDS = frozenset(
    """parse parser args kwargs argv config configs util utils init dict json url urls bool repr func iter
    obj attr attrs addr tmp buf src dst str param params stdin stdout stderr regex enum impl ctx env cfg fmt
    msg num ptr sql xml html csv yaml async await""".split()
)
_MAX_WORD = 24  # longest vocabulary piece tried
_SEARCH_CHARS = 4000  # the definition line is looked for in the first characters only


def identifier_words(text: str) -> list[str]:
    """Lower-cased words with snake_case and camelCase identifiers split (``getHTTPValue`` -> get http value)."""
    words: list[str] = []
    for raw in _IDENT.findall(text):
        for part in raw.split("_"):
            if part:
                words.extend(p.lower() for p in _CAMEL.split(part) if p)
    return words


@functools.lru_cache(maxsize=1 << 16)
def split_compound(word: str) -> tuple[str, ...]:
    """A run-together lower-case word as vocabulary words (``formatmonthname`` -> format month name), or ().

    The cheapest cover of the word by vocabulary words (cost 1 each) and unknown runs (1.5 + 1 per letter);
    () when the word is short, is a word itself, or no cover of two or more pieces uses a vocabulary word.
    Pieces shorter than two letters are dropped from the result (``pvariance`` -> variance).
    """
    if len(word) < 5 or not word.isalpha() or _is_word(word):
        return ()
    n = len(word)
    best: list[tuple[float, tuple[str, ...]]] = [(0.0, ())]
    for i in range(1, n + 1):
        options = []
        for j in range(max(0, i - _MAX_WORD), i):
            piece = word[j:i]
            cost = best[j][0] + (1.0 if _is_word(piece) else 1.5 + (i - j))
            options.append((cost, (*best[j][1], piece)))
        best.append(min(options))
    cover = best[n][1]
    parts = tuple(p for p in cover if len(p) >= 2)
    return parts if len(cover) > 1 and any(_is_word(p) for p in parts) else ()


def _is_word(piece: str) -> bool:
    from omnilab.sql._vocabulary import WORDS

    return piece in WORDS or piece in _SHORT or piece in _CODE_WORDS


def signature_line(content: str) -> tuple[str, str]:
    """(name, line) of the first definition line (``def name(args):``, ``class Name:``...), or ("", "")."""
    head = content[:_SEARCH_CHARS]
    if not any(word in head for word in _SIG_WORDS):  # most text has no definition line: skip the regex
        return "", ""
    m = _SIG.search(head)
    return (m.group("name"), m.group(0).strip()) if m else ("", "")


def _with_compounds(words: Sequence[str]) -> list[str]:
    out = list(words)
    for w in dict.fromkeys(words):
        out.extend(split_compound(w))
    return out


@functools.lru_cache(maxsize=1 << 17)
def _token(raw: str) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """An identifier's (words, has a camelCase boundary, run-together words split), cached: texts repeat them."""
    if "_" not in raw and (raw.islower() or raw.isdigit()):  # the common case: one lower-case word
        return (raw,), False, split_compound(raw)
    words = tuple(identifier_words(raw))
    return words, _CAMEL.search(raw) is not None, tuple(p for w in words for p in split_compound(w))


def keyword_fields(
    content: str, dialect: str = "sqlite", *, camel: bool = True, compounds: bool = True
) -> tuple[str, str, str]:
    """(name, signature, body) texts for the keyword index of ``dialect``.

    SQLite's tokenizer splits snake_case itself, so its body is the text plus the words of its camelCase
    identifiers and run-together words; PostgreSQL's parser does not split identifiers, so its body is the
    text plus all of its identifier words. ``camel`` / ``compounds`` False leave those words out (the
    evaluation measures what each adds).
    """
    name, line = signature_line(content)
    name_words = sig_words = ""
    if name:
        name_parts = identifier_words(name) if camel else name.lower().split("_")
        name_words = " ".join(_with_compounds(name_parts) if compounds else name_parts)
        sig_words = " ".join(identifier_words(line) if camel else re.findall(r"[a-z0-9]+", line.lower()))
    raws = _IDENT.findall(content)
    info = [_token(r) for r in raws]
    extra: list[str] = []
    if dialect == "postgresql":
        extra = [w for words, _, _ in info for w in words] if camel else re.findall(r"[a-z0-9]+", content.lower())
    elif camel:  # camelCase words only (unicode61 already splits on "_")
        extra = [w for words, has_camel, _ in info if has_camel for w in words]
    if compounds:
        seen: set[tuple[str, ...]] = set()
        for _, _, parts in info:
            if parts and parts not in seen:
                seen.add(parts)
                extra.extend(parts)
    body = content if not extra else content + "\n" + " ".join(extra)
    return name_words, sig_words, body


#: statements creating the keyword objects of revision 0009 (the models cannot express them)
KEYWORD_DDL = {
    "sqlite": [
        "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(name, signature, body, tokenize='porter unicode61')",
        "CREATE TRIGGER IF NOT EXISTS memory_fts_ad AFTER DELETE ON memory_vectors BEGIN "
        "DELETE FROM memory_fts WHERE rowid = old.id; END",
    ],
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS memory_keywords (vector_id BIGINT PRIMARY KEY "
        "REFERENCES memory_vectors (id) ON DELETE CASCADE, tsv tsvector NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_memory_keywords_tsv ON memory_keywords USING gin (tsv)",
    ],
}

_DELETE = {
    "sqlite": sa.text("DELETE FROM memory_fts WHERE rowid IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
    "postgresql": sa.text("DELETE FROM memory_keywords WHERE vector_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    ),
}
_INSERT_PG = sa.text(
    "INSERT INTO memory_keywords (vector_id, tsv) VALUES (:vid, setweight(to_tsvector('english', :name), 'A') || "
    "setweight(to_tsvector('english', :signature), 'B') || setweight(to_tsvector('english', :body), 'D'))"
)


def write_rows(conn: sa.Connection, rows: Sequence[tuple[int, str]], *, fresh: bool = False) -> None:
    """(Re)write the keyword rows of (vector id, content) pairs inside the caller's transaction.

    ``fresh``: the key rows were just inserted, so there is nothing to replace.
    """
    dialect = conn.dialect.name
    if not rows or dialect not in KEYWORD_DDL:
        return
    ids = [int(r[0]) for r in rows]
    if not fresh:
        for i in range(0, len(ids), 500):
            conn.execute(_DELETE[dialect], {"ids": ids[i : i + 500]})
    fields = [(vid, *keyword_fields(content, dialect)) for vid, content in zip(ids, (r[1] for r in rows))]
    if dialect == "sqlite":
        conn.exec_driver_sql("INSERT INTO memory_fts (rowid, name, signature, body) VALUES (?, ?, ?, ?)", fields)
    else:
        conn.execute(_INSERT_PG, [{"vid": v, "name": n, "signature": s, "body": b} for v, n, s, b in fields])


def rebuild(conn: sa.Connection, *, batch: int = 2000) -> int:
    """Write the keyword rows of every memory with a key row (after the keyword objects were recreated).

    Needs memory_entries in the same database (a lab attached read-only rebuilds its own keyword rows when
    it repairs them). Returns the number of rows written.
    """
    names = set(sa.inspect(conn).get_table_names())
    if not {"memory_vectors", "memory_entries"} <= names:
        return 0
    stmt = sa.text(
        "SELECT v.id, m.content FROM memory_vectors v JOIN memory_entries m ON m.id = v.memory_id "
        "WHERE v.id > :after ORDER BY v.id LIMIT :n"
    )
    done, after = 0, -1
    while True:
        rows = [(int(i), c or "") for i, c in conn.execute(stmt, {"after": after, "n": batch})]
        if not rows:
            return done
        write_rows(conn, rows, fresh=True)
        done += len(rows)
        after = rows[-1][0]

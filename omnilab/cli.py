"""The ``omnilab`` command. User mistakes end as one clear line on stderr and a non-zero exit.

Heavy modules are imported inside the command that needs them, so ``omnilab --help`` and a search start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omnilab.errors import OmnilabError

if TYPE_CHECKING:
    from omnilab.lab import Lab

__all__ = ["main", "build_parser"]

#: commands that may create the lab they are given; every other command refuses a lab that is not there
_CREATES_LAB = {("demo", None), ("sample", None), ("db", "upgrade"), ("db", "adopt")}


def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", metavar="PATH", help="lab directory (default: $OMNILAB_DATA_DIR or data/lab)")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: SQLite inside the lab)")
    p.add_argument("--redis-url", metavar="URL", help="redis://… or 'embedded' (default)")
    p.add_argument("--embedder", metavar="SPEC", help="e.g. hashing, sentence-transformers, openai")
    p.add_argument(
        "--read-only",
        action="store_true",
        help="attach to the database without writing to it (the platform's own database)",
    )
    p.add_argument("--redis-layout", choices=("omnilab", "platform"), help="key names in Redis (default: omnilab)")


def _open(args: argparse.Namespace, **extra: Any) -> Lab:
    import omnilab

    return omnilab.open(
        args.lab,
        database_url=args.database_url,
        redis_url=args.redis_url,
        embedder=args.embedder,
        read_only=True if getattr(args, "read_only", False) else None,
        redis_layout=getattr(args, "redis_layout", None),
        **extra,
    )


def _require_lab(args: argparse.Namespace) -> None:
    """Refuse a lab directory that holds no lab: a mistyped ``--lab`` would otherwise create an empty one.

    With a database URL (option or ``OMNILAB_DATABASE_URL``) the lab lives in that database, and the first
    read-only attach to a platform's database creates the directory for omnilab's own files.
    """
    from omnilab.config import Settings
    from omnilab.errors import ConfigError

    settings = Settings.from_env(data_dir=args.lab, database_url=args.database_url)
    if settings.database_url is not None:
        return
    path = settings.data_dir
    if path.exists() and not path.is_dir():
        raise ConfigError(f"lab path {path} exists and is not a directory")
    if not (path / "omnilab.db").is_file():
        raise ConfigError(f"no lab at {path}: create one first (omnilab demo --lab {path}, or omnilab sample)")


def _quiet_model_loading() -> None:
    """No weight-loading progress bars or model-hub chatter: a command loads its model on every call.

    Set before huggingface_hub / transformers are imported (they read these once); the user's own settings win.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# ------------------------------------------------------------------------------------------ commands
def cmd_demo(args: argparse.Namespace) -> int:
    """Create a lab on the embedded defaults, load the sample data and show what is there."""
    start = time.perf_counter()
    with _open(args) as lab:
        print(f"lab: {lab.path} (opened in {time.perf_counter() - start:.1f}s)")
        print(f"relational store: {lab.backend} ({lab.stores().location[0]})")
        before = int(lab.counts().sum())
        if before:
            print(f"sample already loaded ({before:,} rows); reusing it")
        else:
            t = time.perf_counter()
            added = lab.load_sample("small", progress=False)
            seconds = time.perf_counter() - t
            print(f"loaded the OmniDev sample: {sum(added.values()):,} rows in {len(added)} tables in {seconds:.1f}s")
        agents = lab.agents()
        print(f"{len(agents)} agents in {agents.system_name.nunique()} systems:")
        for system, names in agents.groupby("system_name")["name"]:
            print(f"  {system}: {', '.join(names)}")
        counts = lab.counts()
        print("rows per table: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
        _demo_memory(lab)
    print(f"done in {time.perf_counter() - start:.1f}s — open it again with omnilab.open({str(lab.path)!r})")
    return 0


def _demo_memory(lab: Any) -> None:
    """Index the sample memories (from the embedding cache where it has them) and run a few searches.

    With MiniLM the cache holds the sample's vectors shipped with omnilab (:mod:`omnilab.sample.shipped`), so
    a first demo runs no model; the output says where the vectors came from.
    """
    from omnilab.sample.shipped import DEMO_QUERIES, count_cached

    t = time.perf_counter()
    cached_before = lab.memory.cache.count()
    lab.memory.reconcile()
    embedded_now = lab.memory.cache.count() - cached_before  # vectors the model computed in this call
    shipped = count_cached(lab.memory)
    st = lab.memory.stats()
    source = f"{embedded_now:,} embedded by the model now, the others read from the embedding cache"
    if shipped:
        source += (
            f", which holds the {shipped:,} MiniLM vectors of the sample and the demo's queries that ship with "
            "omnilab (computed with PyTorch from the packaged weights by python -m omnilab.sample.shipped)"
        )
    print(
        f"vector memory: {st['vectors']:,} memories indexed with {st['embedder']} in {time.perf_counter() - t:.1f}s "
        f"({source}); per type: " + ", ".join(f"{k}={v:,}" for k, v in st["per_type"].items())
    )
    demos: list[tuple[str, str, dict[str, Any]]] = [
        ("search", DEMO_QUERIES[0], {"memory_type": "code"}),
        ("search", DEMO_QUERIES[1], {"where": {"metadata.module": "configparser"}}),
        ("hybrid_search", DEMO_QUERIES[2], {"memory_type": "code"}),
    ]
    for how, query, kw in demos:
        res = getattr(lab, how)(query, k=3, **kw)
        extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in kw.items())
        print(f"lab.{how}({query!r}, k=3, {extra}):")
        for r in res.itertuples():
            meta = r.metadata if isinstance(r.metadata, dict) else {}  # platform rows may hold NULL
            where = meta.get("function_name") or meta.get("module") or r.memory_id
            print(f"  {r.rank}. {r.score:.3f} [{r.memory_type}] {where}: {' '.join(str(r.content).split())[:70]}")
    note = _model_note(lab.memory.embedder)
    if note:
        print(note)


def _model_note(embedder: Any) -> str | None:
    """What the user should know when the demo ran no model: their own texts will run it, once exported."""
    if getattr(embedder, "active_backend", "") is not None or not hasattr(embedder, "layout"):
        return None  # the model ran (or this embedder has no ONNX export to make)
    from omnilab.vectors import onnx_backend

    note = "the demo's query vectors came from that cache too, so no model ran; your own texts and queries are"
    note += " embedded by the model"
    if not onnx_backend.is_cached(embedder.layout, embedder.cache_dir, embedder.precision):
        note += " (its first use on this machine exports it to ONNX once, about 20 s; later runs load it in <1 s)"
    return note + "."


def cmd_db(args: argparse.Namespace) -> int:
    """Alembic migrations of a lab's database."""
    from omnilab.config import Settings
    from omnilab.sql import migrate
    from omnilab.sql.engine import create_engine, describe_url

    if args.db_command == "adopt":
        return _db_adopt(args)
    settings = Settings.from_env(data_dir=args.lab, database_url=args.database_url)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(engine, args.revision)
            print(f"{describe_url(engine.url)} is at {migrate.current(engine)}")
        elif args.db_command == "downgrade":
            migrate.downgrade(engine, args.revision)
            print(f"{describe_url(engine.url)} is at {migrate.current(engine) or 'base (empty)'}")
        elif args.db_command == "current":
            cur = migrate.current(engine)
            head = migrate.head()
            state = "up to date" if cur == head else f"head is {head}"
            print(f"{cur or 'base (empty)'} ({state})")
        elif args.db_command == "check":
            diffs = migrate.check(engine)
            if diffs:
                for d in diffs:
                    print(migrate.describe_diff(d))
                print(f"{len(diffs)} difference(s) between the models and the database", file=sys.stderr)
                return 1
            print("models and database agree")
    finally:
        engine.dispose()
    return 0


def _db_adopt(args: argparse.Namespace) -> int:
    from omnilab.sql.adopt import adopt
    from omnilab.sql.engine import describe_url

    done = adopt(args.url, yes=args.yes, backup=not args.no_backup)
    print(
        f"adopted {describe_url(args.url)}: {len(done['columns_added'])} columns, {len(done['tables_created'])} "
        f"tables, {len(done['indexes_created'])} indexes added; now at revision {done['revision']}"
    )
    if done["backup"]:
        print(f"backup: {done['backup']}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Load the OmniDev sample dataset into a lab."""
    start = time.perf_counter()
    with _open(args) as lab:
        added = lab.load_sample(
            args.size, seed=args.seed, days=args.days, progress=not args.quiet, replace=args.replace
        )
    seconds = time.perf_counter() - start
    if not added:
        print(f"the lab already holds the {args.size} sample (seed {args.seed}); nothing loaded (--replace reloads it)")
        return 0
    total = sum(added.values())
    for table, n in added.items():
        print(f"{table:>22}: {n:,}")
    print(f"{total:,} rows in {seconds:.1f}s ({total / max(seconds, 1e-9):,.0f} rows/s)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Stores, row counts and versions."""
    from importlib import metadata

    import omnilab
    from omnilab.sql import migrate

    versions = {"omnilab": omnilab.__version__}
    for package in ("sqlalchemy", "alembic", "faiss-cpu", "redis", "pandas", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    with _open(args) as lab:
        vectors = lab.memory.stats()
        info: dict[str, Any] = {
            "lab": str(lab.path),
            "schema_revision": migrate.current(lab.engine),
            "embedder": vectors["embedder"],
            "vectors": vectors["per_type"],
            "versions": versions,
            "stores": lab.stores().to_dict(orient="records"),
            "rows": {k: int(v) for k, v in lab.counts().items()},
        }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"lab: {info.pop('lab')}")
    for store in info.pop("stores"):
        print(f"  {store['store']:>10}: {store['backend']} — {store['location']}")
    rows = info.pop("rows")
    for key, value in info.items():
        print(f"{key}: {value}")
    print("rows: " + ", ".join(f"{k}={v:,}" for k, v in rows.items()))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Add memories from a .jsonl or .csv file (embedded once; cached embeddings are reused)."""
    with _open(args, progress=not args.quiet) as lab:
        summary = lab.ingest(
            args.file,
            memory_type=args.type,
            batch_size=args.batch_size,
            progress=not args.quiet,
            dedupe=not args.keep_duplicates,
        )
        embedder = lab.memory.embedder.name
    summary.pop("memory_ids")
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"added {summary['added']:,} memories ({summary['duplicates']:,} duplicates skipped) in "
        f"{summary['seconds']:.1f}s with {embedder}: {summary['embedded']:,} embedded, "
        f"{summary['cache_hits']:,} from the cache, {summary['precomputed']:,} precomputed"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Search memories by meaning (or --hybrid: meaning + keywords); --where takes a JSON filter."""
    from omnilab.vectors.filters import check_where

    try:
        where = json.loads(args.where) if args.where else None
    except RecursionError as exc:
        raise OmnilabError("--where nests too deep") from exc
    except ValueError as exc:
        raise OmnilabError(f"--where is not valid JSON: {exc}") from exc
    check_where(where)  # depth and size, before anything recursive (the cache key) sees the filter
    with _open(args) as lab:
        if args.hybrid:
            res = lab.hybrid_search(args.query, memory_type=args.type, k=args.k, where=where)
        else:
            res = lab.search(args.query, memory_type=args.type, k=args.k, where=where, threshold=args.threshold)
    if args.json:  # memory_id is the memory's string id; timestamps as text
        dates = res.select_dtypes(include=["datetime", "datetimetz"]).columns
        print(res.assign(**{c: res[c].astype(str) for c in dates}).to_json(orient="records"))
        return 0
    if res.empty:
        print("no matching memories")
        return 0
    for r in res.itertuples():
        text = " ".join(str(r.content).split())
        print(f"{r.rank:>3}. {r.score:.3f}  [{r.memory_type}] {r.memory_id}  {text[:100]}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a self-contained HTML agent performance report (charts embedded; opens offline)."""
    start = time.perf_counter()
    with _open(args) as lab:
        path = lab.report(args.output, days=args.days)
    print(f"wrote {path} ({path.stat().st_size:,} bytes, last {args.days} days) in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    """The Redis side of a lab: queue statistics, or queue open SQL tasks that Redis does not know."""
    with _open(args) as lab:
        if args.queue_command == "recover":
            n = lab.queue.recover(args.queue)
            where = f"into {args.queue!r}" if args.queue else "into their own queues"
            print(f"queued {n:,} open task(s) from SQL {where}")
            return 0
        stats = lab.queue.stats()
        caches = lab.cache.stats()
        sessions = len(lab.sessions.frame())
    if args.json:
        stats = stats.astype(object).where(stats.notna(), None)  # missing counts as null, not "<NA>"
        print(
            json.dumps(
                {
                    "queues": stats.to_dict(orient="records"),
                    "caches": caches.to_dict(orient="records"),
                    "sessions": sessions,
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(stats.to_string(index=False) if len(stats) else "no queues yet")
    print(caches.to_string(index=False))
    print(f"live sessions: {sessions}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the memory search UI (Voila) on 127.0.0.1; Ctrl-C or SIGTERM stops it and every kernel."""
    from omnilab.analysis import app

    with _open(args) as lab:  # validate the lab and embed any unindexed memories before the UI starts
        rec = lab.memory.reconcile()
        env = {"OMNILAB_DATA_DIR": str(lab.path), "OMNILAB_EMBEDDER": lab.memory.embedder.spec}
        vectors = lab.memory.stats()["vectors"]
    for key, value in (
        ("OMNILAB_DATABASE_URL", args.database_url),
        ("OMNILAB_REDIS_URL", args.redis_url),
        ("OMNILAB_READ_ONLY", "true" if args.read_only else None),
        ("OMNILAB_REDIS_LAYOUT", args.redis_layout),
    ):  # the app's kernels open the same lab
        if value:
            env[key] = value
    print(f"lab {env['OMNILAB_DATA_DIR']}: {vectors:,} memories indexed ({rec['embedded']:,} embedded now)")
    print(f"search UI on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)", flush=True)
    code = app.serve(args.port, env, idle_kernel_seconds=args.kernel_idle_timeout)
    print("search UI stopped")
    return code


# -------------------------------------------------------------------------------------------- parser
def _seconds(text: str) -> int:
    """A whole number of seconds, at least 1 (an argparse type: a bad value is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnilab", description=__doc__.splitlines()[0].rstrip("."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help=cmd_demo.__doc__, description=cmd_demo.__doc__)
    _lab_options(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("db", help=cmd_db.__doc__, description=cmd_db.__doc__)
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    for name, help_text, rev_default in (
        ("upgrade", "upgrade to a revision (default: head)", "head"),
        ("downgrade", "downgrade to a revision ('base' drops every table)", None),
        ("current", "show the current revision", None),
        ("check", "compare the models with the database (exit 1 on differences)", None),
    ):
        q = dbsub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--lab", metavar="PATH", help="lab directory")
        q.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL")
        if name == "upgrade":
            q.add_argument("revision", nargs="?", default=rev_default)
        elif name == "downgrade":
            q.add_argument("revision", help="target revision, e.g. -1 or base")
    q = dbsub.add_parser(
        "adopt",
        help="make the platform's database at URL an omnilab database, only adding to it",
        description="add omnilab's columns, tables and indexes to the platform's database in place "
        "and stamp it (SQLite is backed up first to NAME.bak-YYYYmmddTHHMMSS)",
    )
    q.add_argument("url", metavar="URL", help="SQLAlchemy URL of the platform's database")
    q.add_argument("--yes", action="store_true", help="required for PostgreSQL, which is changed without a backup")
    q.add_argument("--no-backup", action="store_true", help="do not copy a SQLite file first")
    p.set_defaults(handler=cmd_db)

    p = sub.add_parser("sample", help=cmd_sample.__doc__, description=cmd_sample.__doc__)
    _lab_options(p)
    p.add_argument("--size", choices=("small", "large"), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=None, help="days of history (default: by size)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--replace",
        action="store_true",
        help="delete the rows of the sample's tables (other data included) and load the sample anew",
    )
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("info", help=cmd_info.__doc__, description=cmd_info.__doc__)
    _lab_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("ingest", help=cmd_ingest.__doc__, description=cmd_ingest.__doc__)
    _lab_options(p)
    p.add_argument("file", help=".jsonl or .csv with content, memory_type and optional columns (embedding, …)")
    p.add_argument("--type", help="memory_type for rows that have none")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--keep-duplicates", action="store_true", help="also add rows whose content is stored")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("search", help=cmd_search.__doc__, description=cmd_search.__doc__)
    _lab_options(p)
    p.add_argument("query")
    p.add_argument("--type", help="memory type, e.g. code")
    p.add_argument("--where", metavar="JSON", help='filter, e.g. \'{"metadata.language": "python"}\'')
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--threshold", type=float, default=None, help="keep cosine >= this")
    p.add_argument("--hybrid", action="store_true", help="fuse keyword (BM25) and vector search")
    p.add_argument("--json", action="store_true", help="results as JSON records")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__)
    _lab_options(p)
    p.add_argument("-o", "--output", metavar="FILE", default="report.html", help="HTML file (default: report.html)")
    p.add_argument("--days", type=int, default=30, help="data window in days, ending now (default: 30)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("queue", help=cmd_queue.__doc__, description=cmd_queue.__doc__)
    qsub = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("stats", "pending / waiting / in flight / dead per queue, cache hit rates"),
        ("recover", "queue SQL tasks that are open but unknown to Redis"),
    ):
        q = qsub.add_parser(name, help=help_text, description=help_text)
        _lab_options(q)
        q.add_argument("--queue", help="recover only this queue (default: every queue of this lab)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_queue)

    p = sub.add_parser("ui", help=cmd_ui.__doc__, description=cmd_ui.__doc__)
    _lab_options(p)
    p.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default: 8866)")
    p.add_argument(
        "--kernel-idle-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="shut down a page's kernel this long after the page is gone (default: 60); a closing page "
        "shuts its kernel down at once",
    )
    p.set_defaults(handler=cmd_ui)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _quiet_model_loading()
    try:
        if (args.command, getattr(args, "db_command", None)) not in _CREATES_LAB:
            _require_lab(args)
        return args.handler(args)
    except OmnilabError as exc:
        print(f"omnilab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnilab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

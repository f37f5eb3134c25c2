"""The ``omnilab`` command. User mistakes end as one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from omnilab.errors import OmnilabError

__all__ = ["main", "build_parser"]



def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", metavar="PATH", help="lab directory (default: $OMNILAB_DATA_DIR or data/lab)")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL (default: SQLite inside the lab)")
    p.add_argument("--redis-url", metavar="URL", help="redis://… or 'embedded' (default)")
    p.add_argument("--embedder", metavar="SPEC", help="e.g. hashing, sentence-transformers, openai")


def _open(args: argparse.Namespace, **extra: Any):  # type: ignore[no-untyped-def]
    import omnilab

    return omnilab.open(args.lab, database_url=args.database_url, redis_url=args.redis_url,
                        embedder=args.embedder, **extra)


# ------------------------------------------------------------------------------------------ commands
def cmd_demo(args: argparse.Namespace) -> int:
    """Create a lab on the embedded defaults, load the sample data and show what is there."""
    start = time.perf_counter()
    with _open(args) as lab:
        print(f"lab: {lab.path}")
        print(f"relational store: {lab.backend} ({lab.stores().location[0]})")
        before = int(lab.counts().sum())
        if before:
            print(f"sample already loaded ({before:,} rows); reusing it")
        else:
            added = lab.load_sample("small", progress=False)
            print(f"loaded the OmniDev sample: {sum(added.values()):,} rows in {len(added)} tables")
        agents = lab.agents()
        print(f"{len(agents)} agents in {agents.system.nunique()} systems:")
        for system, names in agents.groupby("system")["name"]:
            print(f"  {system}: {', '.join(names)}")
        counts = lab.counts()
        print("rows per table: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    print(f"done in {time.perf_counter() - start:.1f}s — open it again with omnilab.open({str(lab.path)!r})")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Alembic migrations of a lab's database."""
    from omnilab.config import Settings
    from omnilab.sql import migrate
    from omnilab.sql.engine import create_engine, describe_url

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


def cmd_sample(args: argparse.Namespace) -> int:
    """Load the OmniDev sample dataset into a lab."""
    start = time.perf_counter()
    with _open(args) as lab:
        added = lab.load_sample(args.size, seed=args.seed, days=args.days, progress=not args.quiet)
    seconds = time.perf_counter() - start
    total = sum(added.values())
    for table, n in added.items():
        print(f"{table:>22}: {n:,}")
    print(f"{total:,} rows in {seconds:.1f}s ({total / max(seconds, 1e-9):,.0f} rows/s)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Stores, row counts and versions."""
    import omnilab
    from omnilab.sql import migrate

    with _open(args) as lab:
        info: dict[str, Any] = {
            "lab": str(lab.path),
            "omnilab": omnilab.__version__,
            "schema_revision": migrate.current(lab.engine),
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


# -------------------------------------------------------------------------------------------- parser
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
    p.set_defaults(handler=cmd_db)

    p = sub.add_parser("sample", help=cmd_sample.__doc__, description=cmd_sample.__doc__)
    _lab_options(p)
    p.add_argument("--size", choices=("small", "large"), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=None, help="days of history (default: by size)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("info", help=cmd_info.__doc__, description=cmd_info.__doc__)
    _lab_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_info)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except OmnilabError as exc:
        print(f"omnilab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnilab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

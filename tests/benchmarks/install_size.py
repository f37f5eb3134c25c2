"""Installed size of an extra of omnilab: the dependency closure, measured on this machine's site-packages.

    python tests/benchmarks/install_size.py [--pyproject PATH] all dev bench

Reads the extras from a pyproject.toml (default: the repo's; pass an older one, e.g. from ``git show
REV:pyproject.toml``, to compare), resolves each requirement against the distributions installed here (they
must be installed, e.g. with ``pip install -e ".[bench]"``) and sums the on-disk size of every file listed in
their RECORD. Prints a table and JSON. Packages already in a bare Python (pip, setuptools) are left out.
"""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_BASE = {"pip", "setuptools", "wheel"}


def _dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or ():
        path = Path(str(dist.locate_file(f)))
        if path.is_file():
            total += path.stat().st_size
    return total


def closure(requirements: list[str], extras_of_project: dict[str, list[str]]) -> set[str]:
    """Canonical names of every installed distribution the requirements pull in (project extras expanded)."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        env = default_environment() | {"extra": extra}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name == "omnilab":  # a self-reference such as omnilab[postgres,...]
            for e in req.extras:
                todo += [(Requirement(r), "") for r in extras_of_project[e]]
            continue
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen or name in _BASE:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here; install the extra first") from None
        for r in dist.requires or ():
            sub = Requirement(r)
            for e in [""] + sorted(req.extras):
                if sub.marker is None or sub.marker.evaluate(default_environment() | {"extra": e}):
                    todo.append((Requirement(str(sub).split(";")[0]), ""))
                    break
    return {k.split("[")[0] for k in seen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyproject", default=str(Path(__file__).resolve().parents[2] / "pyproject.toml"))
    ap.add_argument("extras", nargs="+")
    args = ap.parse_args()
    project = tomllib.loads(Path(args.pyproject).read_text())["project"]
    extras = project["optional-dependencies"]
    rows = []
    for extra in args.extras:
        names = closure(list(project["dependencies"]) + list(extras[extra]), extras)
        size = sum(_dist_size(metadata.distribution(n)) for n in names)
        rows.append({"extra": extra, "distributions": len(names), "megabytes": round(size / 1e6, 1)})
    print(f"{'extra':<10} {'distributions':>13} {'MB':>9}   ({args.pyproject})")
    for r in rows:
        print(f"{r['extra']:<10} {r['distributions']:>13} {r['megabytes']:>9,.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Real text for the sample and the search evaluations: module docstrings and documented functions of the
Python standard library, read from the source files with ``ast`` (never imported)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODULES", "stdlib_modules", "stdlib_functions"]

#: the modules the sample and the evaluations read (a spread of text, parsing, I/O and concurrency code)
DEFAULT_MODULES = (
    "json.decoder",
    "json.encoder",
    "textwrap",
    "string",
    "shutil",
    "functools",
    "heapq",
    "bisect",
    "statistics",
    "fractions",
    "difflib",
    "csv",
    "argparse",
    "calendar",
    "ipaddress",
    "urllib.parse",
    "email.utils",
    "pathlib",
    "tempfile",
    "random",
    "glob",
    "fnmatch",
    "base64",
    "html",
    "configparser",
    "pprint",
    "queue",
    "shlex",
    "zipfile",
    "gzip",
    "copy",
    "contextlib",
    "dataclasses",
    "enum",
    "inspect",
    "uuid",
    "posixpath",
    "operator",
    "colorsys",
    "datetime",
    "decimal",
    "_pydecimal",
    "locale",
    "gettext",
    "mimetypes",
    "netrc",
    "plistlib",
    "quopri",
    "sched",
    "secrets",
    "selectors",
    "smtplib",
    "socketserver",
    "sysconfig",
    "tarfile",
    "tokenize",
    "traceback",
    "typing",
    "weakref",
    "wave",
    "zipimport",
    "collections",
    "logging",
    "threading",
    "subprocess",
    "http.cookies",
    "http.client",
    "xml.dom.minidom",
    "unittest.case",
    "asyncio.tasks",
    "concurrent.futures._base",
)

_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _module_source(module: str) -> tuple[str, Path] | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    try:
        return path.read_text(encoding="utf-8"), path
    except OSError:
        return None


def _rel(path: Path) -> str:
    try:
        return path.relative_to(_stdlib_root()).as_posix()
    except ValueError:
        return path.name


@lru_cache(maxsize=4)
def stdlib_modules(modules: tuple[str, ...] = DEFAULT_MODULES) -> tuple[dict[str, Any], ...]:
    """Module docstrings of the given standard-library modules (parsed with ``ast``, never imported).

    Each: module, file_path, docstring, lines, size (bytes), sha256 and head (the first 400 characters).
    """
    out = []
    for module in modules:
        found = _module_source(module)
        if found is None:
            continue
        source, path = found
        doc = ast.get_docstring(ast.parse(source))
        if doc and len(doc.split()) >= 8:
            out.append(
                {
                    "module": module,
                    "file_path": _rel(path),
                    "docstring": doc.strip(),
                    "lines": source.count("\n") + 1,
                    "size": len(source.encode()),
                    "sha256": hashlib.sha256(source.encode()).hexdigest(),
                    "head": source[:400],
                }
            )
    return tuple(out)


@lru_cache(maxsize=4)
def stdlib_functions(modules: tuple[str, ...] = DEFAULT_MODULES, max_chars: int = 4_000) -> tuple[dict[str, Any], ...]:
    """Documented functions and methods of the given modules, in module then line order.

    Each: module, file_path, function_name (qualified), lineno, source (with docstring), docstring,
    code (the source with its docstring removed).
    """
    out: list[dict[str, Any]] = []
    for module in modules:
        found = _module_source(module)
        if found is not None:
            out += _documented_functions(module, *found, max_chars=max_chars)
    return tuple(out)


def _documented_functions(module: str, source: str, path: Path, *, max_chars: int) -> list[dict[str, Any]]:
    lines = source.splitlines(keepends=True)
    out = []
    for qualname, node in _walk_functions(ast.parse(source)):
        doc = ast.get_docstring(node)
        if not doc or len(doc.split()) < 4:
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        segment = "".join(lines[first - 1 : node.end_lineno])
        if len(segment) > max_chars:
            continue
        code = _strip_docstring(node, lines)
        if len(code.strip().splitlines()) < 2:
            continue
        out.append(
            {
                "module": module,
                "file_path": _rel(path),
                "function_name": qualname,
                "lineno": node.lineno,
                "source": segment,
                "docstring": doc.strip(),
                "code": code,
            }
        )
    return out


def _walk_functions(tree: ast.Module) -> list[tuple[str, _Function]]:
    found: list[tuple[str, _Function]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((f"{node.name}.{item.name}", item))
    return found


def _strip_docstring(node: _Function, lines: list[str]) -> str:
    """The function's source lines without the docstring statement."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body_lines = lines[first - 1 : node.end_lineno]
    doc_node = node.body[0]
    end_lineno = doc_node.end_lineno if doc_node.end_lineno is not None else doc_node.lineno
    start, end = doc_node.lineno - first, end_lineno - first + 1
    kept = body_lines[:start] + body_lines[end:]
    return "".join(kept)

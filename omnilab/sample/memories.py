"""The sample's memories: ``memory_entries`` from real text — code (stdlib functions), knowledge (module
docstrings), task (task descriptions) — plus ``memory_relationships`` between them and the
``memory_access`` log of who wrote and read them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from omnilab.sample.draws import naive, new_uuid, seconds
from omnilab.sample.stdlib import stdlib_functions

__all__ = ["memory_tables"]

Link = tuple[int, int, str, float]  # (source row, target row, relationship type, strength)


def memory_tables(
    rng: np.random.Generator,
    code_memories: int,
    n_days: int,
    now: dt.datetime,
    tables: dict[str, dict[str, Any]],
    modules: tuple[dict[str, Any], ...],
    sessions: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """memory_entries, memory_relationships and memory_access, drawn after every other table of ``tables``."""
    rows = _memory_rows(rng, code_memories, tables, modules)
    n = len(rows)
    t_now = naive(now)
    created = t_now - np.timedelta64(n_days * 86400, "s") + seconds(np.sort(rng.uniform(0, n_days * 86400.0, n)))
    ids = [new_uuid(rng) for _ in range(n)]
    session_ids = [r.get("session_id") or sessions[int(s)] for r, s in zip(rows, rng.integers(0, len(sessions), n))]
    access, n_reads, last_read, updated_at = _accesses(
        rng, rows, ids, created, t_now, session_ids, np.array(tables["agents"]["id"]), sessions
    )
    relationships = _relationships(_links(rng, rows, tables["task_dependencies"]), ids, created)
    return {
        "memory_entries": {
            "id": ids,
            "content": [r["content"] for r in rows],
            "memory_type": [r["memory_type"] for r in rows],
            "priority": rng.choice([1, 5, 8, 10], n, p=(0.2, 0.5, 0.22, 0.08)).tolist(),
            "metadata": [r["metadata"] for r in rows],
            "tags": [r["tags"] for r in rows],
            "agent_id": [r["agent_id"] for r in rows],
            "session_id": session_ids,
            "project_id": [r.get("project_id") for r in rows],
            "created_at": created,
            "updated_at": updated_at,
            "access_count": n_reads.tolist(),
            "last_accessed": [last_read.get(i) for i in range(n)],
        },
        "memory_relationships": relationships,
        "memory_access": access,
    }


def _memory_rows(
    rng: np.random.Generator, code_memories: int, tables: dict[str, dict[str, Any]], modules: tuple[dict[str, Any], ...]
) -> list[dict[str, Any]]:
    """The memories' content, type, writer and metadata: code, then knowledge, then task memories."""
    agents = tables["agents"]
    by_type: dict[str, list[str]] = {}
    for aid, atype in zip(agents["id"], agents["agent_type"]):
        by_type.setdefault(atype, []).append(aid)
    rows: list[dict[str, Any]] = []
    funcs = stdlib_functions()
    if len(funcs) > code_memories:  # an even spread over modules, in a fixed order
        keep = np.sort(rng.choice(len(funcs), code_memories, replace=False))
        funcs = tuple(funcs[i] for i in keep)
    coders = by_type["coder"]
    for f in funcs:
        coder = coders[int(rng.integers(0, len(coders)))]
        rows.append(
            {
                "content": f["source"],
                "memory_type": "code",
                "agent_id": coder,
                "tags": ["python", "stdlib", f["module"].split(".")[0]],
                "metadata": {
                    "language": "python",
                    "file_path": f["file_path"],
                    "function_name": f["function_name"],
                    "module": f["module"],
                    "lineno": f["lineno"],
                },
            }
        )
    thinkers = by_type["analyzer"] + by_type["architect"]
    for m in modules:
        rows.append(
            {
                "content": m["docstring"],
                "memory_type": "knowledge",
                "agent_id": thinkers[int(rng.integers(0, len(thinkers)))],
                "tags": ["python", "stdlib", "module-doc"],
                "metadata": {"language": "python", "file_path": m["file_path"], "module": m["module"]},
            }
        )
    tasks = tables["tasks"]
    n_task_mem = min(len(tasks["id"]), max(50, code_memories // 3))
    for i in range(n_task_mem):
        rows.append(
            {
                "content": tasks["description"][i],
                "memory_type": "task",
                "agent_id": tasks["agent_id"][i],
                "project_id": tasks["project_id"][i],
                "session_id": tasks["session_id"][i],
                "tags": [tasks["task_type"][i]],
                "metadata": {"task_id": tasks["id"][i], "status": tasks["status"][i]},
            }
        )
    return rows


def _accesses(
    rng: np.random.Generator,
    rows: list[dict[str, Any]],
    ids: list[str],
    created: np.ndarray,
    t_now: np.datetime64,
    session_ids: list[Any],
    agent_ids: np.ndarray,
    sessions: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray, pd.Series, np.ndarray]:
    """The write when each memory was made, a few reads since, an update for some.

    Returns (memory_access columns, reads per memory, last read per memory index, updated_at).
    """
    n = len(rows)
    age = (t_now - created) / np.timedelta64(1, "s")
    n_reads = rng.poisson(2.0, n)
    read_of = np.repeat(np.arange(n), n_reads)
    read_at = created[read_of] + seconds(rng.uniform(0, 1, len(read_of)) * age[read_of])
    is_updated = rng.random(n) < 0.1
    upd_of = np.flatnonzero(is_updated)
    upd_at = created[upd_of] + seconds(rng.uniform(0, 1, len(upd_of)) * age[upd_of])
    updated_at = created.copy()
    updated_at[upd_of] = upd_at
    last_read = pd.Series(read_at).groupby(read_of).max()
    readers = agent_ids[rng.integers(0, len(agent_ids), len(read_of) + len(upd_of))]
    acc_mem = np.concatenate([np.arange(n), read_of, upd_of])
    acc_sessions = np.concatenate(
        [np.array(session_ids, dtype=object), sessions[rng.integers(0, len(sessions), len(read_of) + len(upd_of))]]
    )
    access = {
        "memory_id": [ids[i] for i in acc_mem],
        "agent_id": [r["agent_id"] for r in rows] + readers.tolist(),
        "session_id": acc_sessions.tolist(),
        "access_type": ["write"] * n + ["read"] * len(read_of) + ["update"] * len(upd_of),
        "timestamp": np.concatenate([created, read_at, upd_at]),
    }
    return access, n_reads, last_read, updated_at


def _relationships(links: list[Link], ids: list[str], created: np.ndarray) -> dict[str, Any]:
    """memory_relationships columns; a link is as old as the younger of its two memories."""
    src, dst = np.array([x[0] for x in links], dtype=int), np.array([x[1] for x in links], dtype=int)
    return {
        "source_memory_id": [ids[i] for i in src],
        "target_memory_id": [ids[i] for i in dst],
        "relationship_type": [x[2] for x in links],
        "strength": [x[3] for x in links],
        "created_at": np.maximum(created[src], created[dst]),
    }


def _links(rng: np.random.Generator, rows: list[dict[str, Any]], deps: dict[str, Any]) -> list[Link]:
    """A function belongs to its module's docstring; related functions of one module; task memories follow
    their tasks' dependencies."""
    knowledge_of = {r["metadata"]["module"]: i for i, r in enumerate(rows) if r["memory_type"] == "knowledge"}
    task_mem = {r["metadata"]["task_id"]: i for i, r in enumerate(rows) if r["memory_type"] == "task"}
    links: list[Link] = []
    previous: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["memory_type"] != "code":
            continue
        module = r["metadata"]["module"]
        if module in knowledge_of:
            links.append((i, knowledge_of[module], "part_of", 1.0))
        if module in previous and rng.random() < 0.2:
            links.append((i, previous[module], "related_to", round(float(rng.uniform(0.5, 0.95)), 3)))
        previous[module] = i
    links += [
        (task_mem[t], task_mem[on], "depends_on", 0.8)
        for t, on in zip(deps["task_id"], deps["depends_on_task_id"])
        if t in task_mem and on in task_mem
    ]
    return links

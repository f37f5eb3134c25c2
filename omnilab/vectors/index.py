"""FAISS indexes, one per memory type, persisted as a directory: a JSON manifest plus native FAISS files.

Each type holds an ``IndexIDMap2(IndexFlatIP)`` whose ids are memory rows' integer ids (exact search,
removals). With ``kind="hnsw"`` an ``IndexHNSWFlat`` graph is kept beside it for fast unfiltered search;
selective filters are answered exactly from the flat index. Saves are atomic (temp file, fsync,
``os.replace``; the manifest is replaced last and names generation-stamped files), writers across
processes are serialized by a file lock, and a reader reloads when the manifest's generation changes.
Never pickle: files are FAISS's own format and ``.npy`` arrays written with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from omnilab.errors import ConfigError, InvalidInput, StoreUnavailable
from omnilab.vectors import hugepages

__all__ = ["VectorIndex", "Hit", "key_code", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_TYPE_RE = re.compile(r"^[a-z0-9_]+$")


def key_code(key: str | None) -> int:
    """A 60-bit integer from an embedding key (its first 15 hex digits), stored beside each vector."""
    return int(key[:15], 16) if key else -1


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a hard dependency
        raise ConfigError("vector search needs `pip install faiss-cpu`") from exc
    return faiss


class _TypeFiles(TypedDict, total=False):
    """The files of one memory type's index, as the manifest lists them."""

    file: str  # the flat FAISS index
    keys: str  # .npy of [id, key code]
    count: int
    hnsw: str  # the HNSW graph (kind="hnsw")
    labels: str  # .npy of HNSW position -> id


@dataclass
class Hit:
    """One search result: memory row id, cosine score and memory type."""

    id: int
    score: float
    memory_type: str


@dataclass
class _TypeIndex:
    flat: Any
    keys: dict[int, int] = field(default_factory=dict)  # memory id -> key code of its vector
    hnsw: Any = None
    labels: np.ndarray | None = None  # hnsw position -> memory id (-1: removed)
    positions: dict[int, int] = field(default_factory=dict)  # memory id -> live hnsw position

    @property
    def count(self) -> int:
        return int(self.flat.ntotal)


def _best_first(hit: tuple[float, int, str]) -> tuple[float, int]:
    """Sort key of (score, id, type): score descending, ties by id."""
    return -hit[0], hit[1]


def _fsync_write(path: Path, data: bytes | memoryview) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_index(path: Path, index: Any) -> None:
    """Write a FAISS index straight to a file (no in-memory copy: ``serialize_index`` would hold two)."""
    tmp = path.with_name(path.name + ".tmp")
    _faiss().write_index(index, str(tmp))
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    """The FAISS side of the memory store. Not thread-safe by itself: :class:`MemoryStore` serializes calls.

    ``search`` takes an (d,) float32 query and returns :class:`Hit` lists; ``candidates`` (memory type ->
    int64 ids that passed a SQL filter) restricts the search exactly.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        dim: int,
        embedder: str,
        kind: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 128,
    ) -> None:
        if kind not in ("flat", "hnsw"):
            raise ConfigError(f"index kind must be 'flat' or 'hnsw', got {kind!r}")
        self.dir = Path(directory)
        self.dim, self.embedder, self.kind = int(dim), embedder, kind
        self.hnsw_m, self.ef_search = hnsw_m, ef_search
        self.types: dict[str, _TypeIndex] = {}
        self.where: dict[int, str] = {}  # memory id -> memory type
        self.generation = 0  # saves so far (from the manifest)
        self.sql_generation = 0  # the SQL write generation this index reflects
        self.applied_seq = 0  # the memory change log is applied through this seq (omnilab.vectors.changes)
        self.dirty: set[str] = set()
        self._files: dict[str, _TypeFiles] = {}
        self._stat: tuple | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        self.lock = FileLock(str(self.dir / ".lock"), timeout=120)

    # ------------------------------------------------------------------------------------ contents
    def _new_type(self) -> _TypeIndex:
        faiss = _faiss()
        ti = _TypeIndex(flat=faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim)))
        if self.kind == "hnsw":
            ti.hnsw = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            ti.labels = np.zeros(0, dtype=np.int64)
        return ti

    def __len__(self) -> int:
        return len(self.where)

    def counts(self) -> dict[str, int]:
        return {t: ti.count for t, ti in sorted(self.types.items()) if ti.count}

    def keys(self) -> dict[int, tuple[str, int]]:
        """memory id -> (memory type, key code) of every indexed vector (for reconciling with SQL)."""
        return {i: (t, code) for t, ti in self.types.items() for i, code in ti.keys.items()}

    def add(self, memory_type: str, ids: np.ndarray, vectors: np.ndarray, keys: Iterable[str | None]) -> None:
        """Add (or replace) vectors: ids (n,) int64, vectors (n, d) float32 L2-normalized."""
        if not _TYPE_RE.match(memory_type):
            raise InvalidInput(f"bad memory type {memory_type!r}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (ids.shape[0], self.dim):
            raise InvalidInput(f"vectors must have shape ({ids.shape[0]}, {self.dim}), got {vectors.shape}")
        if ids.size == 0:
            return
        present = [int(i) for i in ids if int(i) in self.where]
        if present:
            self.remove(present)
        ti = self.types.get(memory_type) or self.types.setdefault(memory_type, self._new_type())
        ti.flat.add_with_ids(vectors, ids)
        for i, k in zip(ids.tolist(), keys):
            ti.keys[i] = key_code(k)
            self.where[i] = memory_type
        if ti.hnsw is not None:
            start = ti.hnsw.ntotal
            ti.hnsw.add(vectors)
            ti.labels = np.concatenate([ti.labels, ids])
            ti.positions.update(zip(ids.tolist(), range(start, start + len(ids))))
        self.dirty.add(memory_type)

    def compact(self, memory_types: Iterable[str]) -> None:
        """Copy these types' flat indexes into fresh memory, on huge pages where the OS gives them
        (:mod:`omnilab.vectors.hugepages`). A flat index grown by many adds (or read from a file) scans
        ~15-30 % slower than a copy of it (measured with 50k x 384 on this machine: 4.3 vs 3.6 ms per query);
        the copy costs ~1 ms per thousand vectors, so callers do it after bulk adds."""
        faiss = _faiss()
        for t in memory_types:
            ti = self.types.get(t)
            if ti is not None and ti.count:
                ti.flat = faiss.clone_index(ti.flat)
                hugepages.advise(ti.flat)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove vectors by memory id; unknown ids are ignored. Returns how many were removed."""
        by_type: dict[str, list[int]] = {}
        for i in ids:
            t = self.where.pop(int(i), None)
            if t is not None:
                by_type.setdefault(t, []).append(int(i))
        faiss = _faiss()
        for t, lst in by_type.items():
            ti = self.types[t]
            arr = np.asarray(lst, dtype=np.int64)
            ti.flat.remove_ids(faiss.IDSelectorBatch(arr))
            for i in lst:
                ti.keys.pop(i, None)
                pos = ti.positions.pop(i, None)
                if pos is not None and ti.labels is not None:
                    ti.labels[pos] = -1
            if (
                ti.hnsw is not None
                and ti.labels is not None
                and np.count_nonzero(ti.labels < 0) > max(1000, 0.25 * ti.labels.size)
            ):
                self._rebuild_hnsw(ti)
            self.dirty.add(t)
        return sum(len(v) for v in by_type.values())

    def _rebuild_hnsw(self, ti: _TypeIndex) -> None:
        faiss = _faiss()
        ids = np.fromiter(ti.keys, dtype=np.int64, count=len(ti.keys))
        ti.hnsw = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        if ids.size:
            ti.hnsw.add(ti.flat.reconstruct_batch(ids))
        ti.labels = ids
        ti.positions = dict(zip(ids.tolist(), range(ids.size)))

    def vectors(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found ids (m,), their vectors (m, d)) for the ids that are indexed."""
        found = [int(i) for i in ids if int(i) in self.where]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(found), self.dim), dtype=np.float32)
        by_type: dict[str, list[int]] = {}
        for pos, i in enumerate(found):
            by_type.setdefault(self.where[i], []).append(pos)
        arr = np.asarray(found, dtype=np.int64)
        for t, positions in by_type.items():
            out[positions] = self.types[t].flat.reconstruct_batch(arr[positions])
        return arr, out

    # -------------------------------------------------------------------------------------- search
    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        types: Iterable[str] | None = None,
        candidates: Mapping[str, np.ndarray] | None = None,
    ) -> list[Hit]:
        """The k best (highest cosine) vectors over ``types`` (default all), exact unless HNSW is used
        unfiltered. With ``candidates`` only those ids can be returned, and the result is always exact."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise InvalidInput(f"query vector has dimension {q.shape[1]}, the index has {self.dim}")
        names = list(self.types) if types is None else [t for t in types if t in self.types]
        # FAISS single-threaded: one query gains nothing from OpenMP, and on busy machines the thread hand-off
        # costs more than the scan (measured: 100k x 384, 13 ms on one thread vs 44 ms on two)
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        if threads != 1:
            faiss.omp_set_num_threads(1)
        try:
            found = self._search_types(q, k, names, candidates)
        finally:
            if threads != 1:
                faiss.omp_set_num_threads(threads)
        # Merged with one list sort and only the k best made into Hits: this runs right after a scan that
        # evicted the caches, where every numpy call and Python object costs several times its warm price.
        merged = [(s, i, t) for t, scores, ids in found for s, i in zip(scores.tolist(), ids.tolist()) if i >= 0]
        merged.sort(key=_best_first)
        return [Hit(i, s, t) for s, i, t in merged[:k]]

    def _search_types(
        self, q: np.ndarray, k: int, names: list[str], candidates: Mapping[str, np.ndarray] | None
    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(type, scores, ids) of each type's k best (ids may be -1 where a type has fewer)."""
        found = []
        for t in names:
            ti = self.types[t]
            if ti.count == 0:
                continue
            if candidates is None:
                scores, ids = self._search_all(ti, q, k)
            else:
                cand = candidates.get(t)
                if cand is None or len(cand) == 0:
                    continue
                scores, ids = self._search_subset(ti, q, k, np.asarray(cand, dtype=np.int64))
            found.append((t, scores, ids))
        return found

    def _search_all(self, ti: _TypeIndex, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        kk = min(k, ti.count)
        labels = ti.labels
        if ti.hnsw is None or labels is None or ti.count < 5000:
            d, i = ti.flat.search(q, kk)
            return d[0], i[0]
        faiss = _faiss()
        dead = np.flatnonzero(labels < 0).astype(np.int64)
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, 2 * kk))
        if dead.size:
            keep_sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(dead))
            params.sel = keep_sel
        d, pos = ti.hnsw.search(q, kk, params=params)
        ids = np.where(pos[0] >= 0, labels[np.maximum(pos[0], 0)], -1)
        return d[0], ids

    def _search_subset(self, ti: _TypeIndex, q: np.ndarray, k: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among candidate ids (some may not be indexed: they are never returned)."""
        if cand.size * 4 <= ti.count or ti.hnsw is not None:
            # Few candidates (or HNSW, whose filtered recall is not guaranteed): score them directly.
            cand = np.asarray([c for c in cand.tolist() if c in ti.keys], dtype=np.int64)
            if cand.size == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            scores = ti.flat.reconstruct_batch(cand) @ q[0]
            order = np.lexsort((cand, -scores))[: min(k, cand.size)]
            return scores[order], cand[order]
        faiss = _faiss()  # many: a scan of the flat index skipping the others (ids it lacks match nothing)
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(cand, dtype=np.int64))
        d, i = ti.flat.search(q, min(k, cand.size, ti.count), params=faiss.SearchParameters(sel=sel))
        return d[0], i[0]

    # --------------------------------------------------------------------------------- persistence
    def _manifest(self) -> dict[str, Any] | None:
        path = self.dir / MANIFEST
        try:
            m = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"cannot read the vector index manifest {path}: {exc}") from exc
        if not isinstance(m, dict) or not isinstance(m.get("generation"), int) or not isinstance(m.get("types"), dict):
            raise StoreUnavailable(f"the vector index manifest {path} is not a manifest")
        return m

    def _manifest_stat(self) -> tuple | None:
        try:
            st = os.stat(self.dir / MANIFEST)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def disk_generation(self) -> int:
        m = self._manifest()
        return int(m["generation"]) if m else 0

    def load(self) -> bool:
        """Load the saved index (if any); returns False when there is nothing on disk."""
        for _attempt in range(5):  # a concurrent save may delete files named by an older manifest
            stat = self._manifest_stat()
            manifest = self._manifest()
            if manifest is None:
                return False
            try:
                self._load(manifest)
                self._stat = stat
                return True
            except FileNotFoundError:
                continue
            except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError, OSError) as exc:
                # a torn or corrupt file (FAISS raises RuntimeError): the caller rebuilds it from SQL
                raise StoreUnavailable(f"vector index in {self.dir} is damaged: {exc}") from exc
        raise StoreUnavailable(f"vector index in {self.dir} keeps changing while loading; try again")

    def file_generation(self) -> int:
        """The newest generation stamped in the index's file names (to continue after a damaged manifest)."""
        gens = [int(m.group(1)) for p in self.dir.iterdir() if (m := re.search(r"\.(\d{8})\.", p.name))]
        return max(gens, default=0)

    def _load(self, m: dict[str, Any]) -> None:
        if int(m.get("format", 0)) != FORMAT_VERSION:
            raise StoreUnavailable(f"vector index format {m.get('format')} is not supported (need {FORMAT_VERSION})")
        if m.get("embedder") != self.embedder or int(m.get("dim", 0)) != self.dim:
            raise ConfigError(
                f"vector index in {self.dir} was built with {m.get('embedder')} "
                f"(dim {m.get('dim')}), the lab uses {self.embedder} (dim {self.dim})"
            )
        faiss = _faiss()
        types: dict[str, _TypeIndex] = {}
        loaded: list[str] = []
        files = m.get("types", {})
        for t, info in files.items():
            if self._files.get(t) == info and t in self.types and t not in self.dirty:
                types[t] = self.types[t]  # unchanged since we loaded it
                continue
            ti = _TypeIndex(flat=faiss.read_index(str(self._path(info["file"]))))
            loaded.append(t)
            arr = np.load(self._path(info["keys"]), allow_pickle=False)
            ti.keys = dict(zip(arr[:, 0].tolist(), arr[:, 1].tolist()))
            if ti.count != len(ti.keys):
                raise StoreUnavailable(f"vector index {info['file']} does not match its key file")
            if self.kind == "hnsw":
                if info.get("hnsw"):
                    ti.hnsw = faiss.read_index(str(self._path(info["hnsw"])))
                    ti.labels = np.load(self._path(info["labels"]), allow_pickle=False)
                    ti.positions = {int(i): p for p, i in enumerate(ti.labels.tolist()) if i >= 0}
                else:
                    self._rebuild_hnsw(ti)
            types[t] = ti
        self.types = types
        self.compact(loaded)  # what read_index returns scans ~25 % slower than a copy (see compact)
        self._files = {t: _TypeFiles(**v) for t, v in files.items()}
        self.where = {i: t for t, ti in types.items() for i in ti.keys}
        self.generation = int(m["generation"])
        self.sql_generation = int(m.get("sql_generation", 0))
        self.applied_seq = int(m.get("applied_seq", 0))  # 0 (older manifests): below any compaction horizon
        self.dirty.clear()

    def _path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise StoreUnavailable(f"bad file name {name!r} in the vector index manifest")
        path = self.dir / name
        if not path.exists():
            raise FileNotFoundError(path)
        return path

    def changed_on_disk(self) -> bool:
        """Cheap check (one stat) whether another process saved since we loaded."""
        return self._manifest_stat() != self._stat

    def save(self, sql_generation: int, *, force: bool = False) -> bool:
        """Write the changed types and a new manifest. Caller holds ``self.lock``.

        Returns False (writing nothing) when another process saved since we loaded: the caller reloads,
        reconciles with SQL and saves again.
        """
        try:
            disk = self._manifest()
        except StoreUnavailable:  # damaged (saves replace it atomically, so not a concurrent save): overwrite
            disk = {"generation": self.generation}
        disk_gen = int(disk["generation"]) if disk else 0
        if disk_gen != self.generation:
            return False
        if not self.dirty and not force and disk is not None and sql_generation == self.sql_generation:
            return True
        gen = self.generation + 1
        files = {t: v.copy() for t, v in self._files.items() if t in self.types and self.types[t].count}
        for t, ti in self.types.items():
            if ti.count == 0:
                files.pop(t, None)
                continue
            if t not in self.dirty and t in files and not force:
                continue
            info = _TypeFiles(file=f"{t}.{gen:08d}.faiss", keys=f"{t}.{gen:08d}.keys.npy", count=ti.count)
            # streamed to disk: RSS must not grow by the index size (or twice it) while saving
            _fsync_index(self.dir / info["file"], ti.flat)
            _fsync_npy(self.dir / info["keys"], _key_array(ti.keys))
            if ti.hnsw is not None and ti.labels is not None:
                info["hnsw"] = f"{t}.{gen:08d}.hnsw"
                info["labels"] = f"{t}.{gen:08d}.labels.npy"
                _fsync_index(self.dir / info["hnsw"], ti.hnsw)
                _fsync_npy(self.dir / info["labels"], ti.labels)
            files[t] = info
        manifest = {
            "format": FORMAT_VERSION,
            "embedder": self.embedder,
            "dim": self.dim,
            "index": self.kind,
            "generation": gen,
            "sql_generation": int(sql_generation),
            "applied_seq": self.applied_seq,
            "counts": {t: self.types[t].count for t in sorted(files)},
            "types": files,
        }
        _fsync_write(self.dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        _fsync_dir(self.dir)
        self.generation, self.sql_generation = gen, int(sql_generation)
        self._files = files
        self._stat = self._manifest_stat()
        self.dirty.clear()
        self._cleanup(files)
        return True

    def _cleanup(self, files: dict[str, _TypeFiles]) -> None:
        keep = {MANIFEST, ".lock"} | {str(name) for info in files.values() for k, name in info.items() if k != "count"}
        for p in self.dir.iterdir():
            if p.name not in keep and (p.suffix in (".faiss", ".npy", ".hnsw", ".tmp")):
                try:
                    p.unlink()
                except OSError:  # pragma: no cover - another process removed it first
                    pass

    def clear(self) -> None:
        """Forget every vector (in memory); the next save writes an empty index."""
        self.types.clear()
        self.where.clear()
        self.dirty.update(self._files)


def _key_array(keys: dict[int, int]) -> np.ndarray:
    """(n, 2) int64 [id, key code] sorted by id, built without a Python tuple per vector."""
    arr = np.empty((len(keys), 2), dtype=np.int64)
    arr[:, 0] = np.fromiter(keys.keys(), dtype=np.int64, count=len(keys))
    arr[:, 1] = np.fromiter(keys.values(), dtype=np.int64, count=len(keys))
    return arr[np.argsort(arr[:, 0], kind="stable")]

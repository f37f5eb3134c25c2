"""Huge pages under flat indexes: same search results, really on 2 MiB pages when the kernel says so."""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
from vector_data import unit_vectors

from omnilab.vectors import hugepages
from omnilab.vectors.index import VectorIndex


def _huge_kib_at(address: int) -> int:
    """AnonHugePages (KiB) of the mapping holding ``address``, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("wrapped", [False, True], ids=["flat", "id-map"])
def test_advice_keeps_results_and_moves_the_vectors(wrapped):
    vecs = unit_vectors(8000)  # 12 MB, above MIN_BYTES
    flat = faiss.IndexFlatIP(384)
    index = faiss.IndexIDMap2(flat) if wrapped else flat
    if wrapped:
        index.add_with_ids(vecs, np.arange(8000, dtype=np.int64) * 7)
    else:
        index.add(vecs)
    queries = unit_vectors(20, seed=1)
    before = index.search(queries, 10)
    moved = hugepages.advise(index)
    after = index.search(queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    found = hugepages._vectors(index)
    assert found is not None
    address, size = found
    assert size == vecs.nbytes
    if moved:  # the kernel said yes: the vectors' mapping now holds huge pages
        assert _huge_kib_at(address + size // 2) >= 2048
    elif sys.platform.startswith("linux") and Path("/sys/kernel/mm/transparent_hugepage/enabled").exists():
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        assert "[never]" in mode, f"huge pages refused although THP is {mode.strip()}"


def test_small_or_other_indexes_are_left_alone():
    small = faiss.IndexFlatIP(384)
    small.add(unit_vectors(100))
    assert hugepages.advise(small) is False  # below MIN_BYTES
    assert hugepages.advise(faiss.IndexFlatIP(384)) is False  # empty
    hnsw = faiss.IndexHNSWFlat(384, 16)
    assert hugepages._vectors(hnsw) is None  # not a flat index: nothing to advise


def test_compacted_index_searches_as_before(tmp_path):
    vecs = unit_vectors(9000)
    ids = np.arange(9000, dtype=np.int64)
    index = VectorIndex(tmp_path, dim=384, embedder="hashing")
    index.add("code", ids, vecs, [f"{i:016x}" for i in range(9000)])
    q = unit_vectors(1, seed=2)[0]
    before = index.search(q, 10)
    index.compact(["code"])
    assert index.search(q, 10) == before
    expect = np.argsort(-(vecs @ q), kind="stable")[:10]  # brute force
    assert [h.id for h in before] == expect.tolist()

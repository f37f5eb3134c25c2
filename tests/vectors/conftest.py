"""Seeded memories with known vectors, and an independent brute-force reference (numpy + pandas)."""

from __future__ import annotations

import pytest
from vector_data import seeded_rows


@pytest.fixture
def seeded(lab):
    rows = seeded_rows(1500, seed=1)
    summary = lab.ingest(rows, progress=False)
    assert summary["added"] == len(rows)
    return lab, rows, summary["memory_ids"]

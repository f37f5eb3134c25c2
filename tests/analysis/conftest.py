"""Fixtures for the chart and report tests: the seeded analytics data of tests/sql on each backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "omnilab_test_analytics_data", Path(__file__).resolve().parents[1] / "sql" / "analytics_data.py"
)
analytics_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(analytics_data)


@pytest.fixture
def data_lab(lab):
    """The `lab` fixture (SQLite and PostgreSQL) filled with the seeded analytics data."""
    analytics_data.populate(lab, seed=1)
    return lab


@pytest.fixture
def now():
    return analytics_data.NOW

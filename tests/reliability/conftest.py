"""Fixtures of the reliability suite (the shared checks live in rel_checks.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rel_workers and rel_checks, also for forkserver children

from rel_checks import REDIS_URL  # noqa: E402


@pytest.fixture
def server_redis_url() -> str:
    if not REDIS_URL:
        pytest.skip("OMNILAB_TEST_REDIS_URL is not set")
    return REDIS_URL

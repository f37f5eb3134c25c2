"""The OmniDev sample dataset: the platform's 29 agents plus generated operations data and memories taken
from real text (functions and module docstrings of the Python standard library).

Tables and columns are the platform's (``system_name``, ``tasks.content``, per-day ``agent_stats``, string
memory ids, ...); summary tables (``agent_stats``, ``project_stats``, ``memory_entries.access_count``) are
derived from the generated detail rows, so they agree with any recomputation. Everything is deterministic
for a given ``seed`` and ``anchor`` (the moment "now" of the data, by default the start of the current UTC
hour, so windows like "the last 7 days" are populated).

Modules: ``catalog`` (agents, profiles, sizes), ``stdlib`` (the standard-library text corpus), ``generator``
(one builder per table), ``memories``, ``loader`` (writing into a lab, idempotent) and ``platform`` (a small
database and Redis written exactly as the platform writes them, for attach/adopt).
"""

from __future__ import annotations

from omnilab.sample.catalog import AGENTS, SIZES, SampleSize, agents_frame, anchor_now
from omnilab.sample.generator import daily_agent_stats, generate
from omnilab.sample.loader import load, loaded_sample

__all__ = [
    "AGENTS",
    "SIZES",
    "SampleSize",
    "load",
    "loaded_sample",
    "generate",
    "agents_frame",
    "anchor_now",
    "daily_agent_stats",
]

"""The platform-shaped sample (omnilab.sample.platform) under the name the tests import."""

from omnilab.sample.platform import *  # noqa: F403
from omnilab.sample.platform import AGENTS, MEMORIES, SCHEMA_SQL, TASK_TYPES  # noqa: F401

"""The platform-shaped sample (omnilab.platform_sample) under the name the tests import."""

from omnilab.platform_sample import *  # noqa: F403
from omnilab.platform_sample import AGENTS, MEMORIES, SCHEMA_SQL, TASK_TYPES  # noqa: F401

"""The bottom-layer helpers every layer shares: argument type checks (omnilab._checks) and URL redaction
(omnilab._text, behind describe_url / describe_redis_url)."""

from __future__ import annotations

import fractions
import math

import numpy as np
import pytest
import sqlalchemy as sa

from omnilab._checks import is_int, is_integral, is_number
from omnilab._text import redact_url
from omnilab.errors import LeaseLost, OmnilabError
from omnilab.sessions.connection import describe_redis_url
from omnilab.sql.engine import describe_url


@pytest.mark.parametrize(
    ("value", "int_", "integral", "number", "finite"),
    [
        (3, True, True, True, True),
        (-1, True, True, True, True),
        (True, False, False, False, False),  # a bool is an int to Python, never a count to omnilab
        (np.bool_(True), False, False, False, False),
        (np.int64(3), False, True, False, False),
        (2.5, False, False, True, True),
        (math.inf, False, False, True, False),
        (math.nan, False, False, True, False),
        (np.float64(1.5), False, False, True, True),  # a float subclass
        (np.float32(1.5), False, False, False, False),
        (fractions.Fraction(1, 2), False, False, False, False),
        ("3", False, False, False, False),
        (None, False, False, False, False),
    ],
)
def test_type_checks(value, int_, integral, number, finite):
    assert is_int(value) is int_
    assert is_integral(value) is integral
    assert is_number(value) is number
    assert is_number(value, finite=True) is finite


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6380/2", "redis://:***@host:6380/2"),
        ("rediss://user:pw@Host.Example/0", "rediss://user:***@Host.Example/0"),
        ("redis://:pw@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        (
            "postgresql+psycopg://u:p%40ss@db:5432/x?sslmode=require",
            "postgresql+psycopg://u:***@db:5432/x?sslmode=require",
        ),
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # an unescaped '@' in the password
        ("redis://u:@h", "redis://u:***@h"),  # an empty password is still a password field
        ("redis://user@host/0", "redis://user@host/0"),
        ("sqlite:////tmp/a@b/lab.db", "sqlite:////tmp/a@b/lab.db"),  # '@' in a path is not a password
        ("http://h/path?next=u:p@x", "http://h/path?next=u:p@x"),
        ("embedded", "embedded"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    assert describe_redis_url(url) == shown


def test_describe_url_hides_the_password_of_strings_and_url_objects():
    url = "postgresql+psycopg://omni:hunter2@db.internal:5432/lab"
    assert describe_url(url) == describe_url(sa.make_url(url)) == "postgresql+psycopg://omni:***@db.internal:5432/lab"
    assert describe_url("sqlite:////tmp/lab/omnilab.db") == "sqlite:////tmp/lab/omnilab.db"


def test_lease_lost_is_an_omnilab_error():
    assert issubclass(LeaseLost, OmnilabError)
    from omnilab.sessions import LeaseLost as exported

    assert exported is LeaseLost

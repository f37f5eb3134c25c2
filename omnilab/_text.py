"""Text helpers shared by every layer (bottom layer: imports nothing from omnilab)."""

from __future__ import annotations

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``scheme://user:***@host/...``: the URL with any password replaced by ``***`` (safe for messages and
    logs); a URL without a password, or any other text, comes back unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # the authority ends at the first '/', '?' or '#' (RFC 3986); the password is between ':' and the last '@'
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{tail}"

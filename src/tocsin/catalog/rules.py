"""Pure checks on catalog values, shared by the API schemas (422 per field) and the service layer."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ASSET_TAG = re.compile(r"^[A-Z0-9][A-Z0-9._/-]*$")
TIERS = range(1, 5)  # 1 = most critical, 4 = least


def check_slug(value: str) -> str:
    """A service slug: lowercase letters, digits and hyphens; never all digits, so a path segment that is a
    number always means an id."""
    if not SLUG.match(value):
        raise ValueError(
            f"slug {value!r} must match ^[a-z0-9][a-z0-9-]*$ (lowercase letters, digits, hyphens)"
        )
    if value.isdigit():
        raise ValueError(f"slug {value!r} is all digits, which reads as an id; add a letter or a hyphen")
    return value


def check_tier(value: int) -> int:
    if value not in TIERS:
        raise ValueError(f"tier {value} is out of range; use 1 (most critical) to 4 (least critical)")
    return value


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host, kept verbatim (no normalisation)."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http:// or https:// URL")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"{value!r} contains whitespace; percent-encode it")
    return value


def normalise_tag(value: str) -> str:
    """Asset tags compare case-insensitively in people's heads, so they are stored in upper case."""
    tag = value.strip().upper()
    if not ASSET_TAG.match(tag):
        raise ValueError(
            f"asset tag {value!r} may hold only letters, digits and . _ / - (starting with a letter or digit)"
        )
    return tag

"""The adapter contract: a request in, normalized alert events out, or a PayloadError naming what is wrong."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson

from tocsin.alerts.models import Severity
from tocsin.alerts.options import ACKNOWLEDGE_WORDS, RESOLVE_WORDS

MAX_DEPTH = 64  # JSON nesting deeper than this is refused: no sender needs it, and it costs stack
DEDUP_KEY_MAX = 255
SUMMARY_MAX = 1024
SOURCE_MAX = 255
RAW_MAX = 65_536  # bytes of JSON kept per alert as its raw payload


class Action(StrEnum):
    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"


class PayloadError(Exception):
    """The payload cannot be turned into alerts; `errors` lists each problem in words a sender can act on."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else [message]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One normalized thing a sender said about one alert."""

    dedup_key: str
    action: Action
    summary: str = ""
    severity: Severity = Severity.warning
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    raw: Any = None
    # A CloudEvent's (source, id): seen once per integration, repeats are dropped.
    once: tuple[str, str] | None = None


_UNPARSED: Any = object()


@dataclass(slots=True)
class IntakeRequest:
    """What an adapter may look at: the body bytes, lower-cased headers, and for mail the recipient."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    recipient: str = ""
    _json: Any = field(default=_UNPARSED, repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, decoded once (a route may look at it before the adapter does)."""
        if self._json is _UNPARSED:
            self._json = load_json(self.body)
        return self._json


class Adapter(Protocol):
    """One intake format. Built with the integration's validated config; `parse` never raises anything
    but PayloadError, whatever the bytes."""

    def parse(self, request: IntakeRequest) -> list[AlertEvent]: ...


# --- JSON ------------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")  # NUL or a surrogate: PostgreSQL refuses both


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def load_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body into plain values safe to store (no NaN, NUL or lone surrogates)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    value = _fast_json(text, body)
    if value is _UNPARSED:
        try:
            value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
        except RecursionError as exc:
            raise PayloadError(f"the body is nested more than {MAX_DEPTH} levels deep") from exc
        except ValueError as exc:  # JSONDecodeError is a ValueError, so are the number checks above
            raise PayloadError(f"the body is not valid JSON ({exc})") from exc
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise PayloadError(f"the body is nested more than {MAX_DEPTH} levels deep")
    return clean(value) if _RISKY_ESCAPE.search(body) else value


# orjson rounds integers beyond 64 bits to floats where json keeps them whole: bodies with such long digit
# runs go to json, as do all that orjson refuses (json then says why, or accepts a lone surrogate).
_LONG_NUMBER = re.compile(rb"\d{19}")


def _fast_json(text: str, body: bytes) -> Any:
    """The body decoded by orjson (several times faster), or _UNPARSED for json to decide."""
    if _LONG_NUMBER.search(body):
        return _UNPARSED
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNPARSED


def _too_deep(value: Any) -> bool:
    level, depth = [value] if isinstance(value, dict | list) else [], 1
    while level:
        if depth > MAX_DEPTH:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        depth += 1
    return False


def clean_text(text: str) -> str:
    """Drop NUL and replace lone surrogates, which databases refuse to store."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


# --- field helpers ---------------------------------------------------------------------------------


def clamp(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_text(value: Any) -> str:
    """A scalar as display text; containers and null as empty."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def stable_key(*parts: str) -> str:
    """A dedup key derived from text: the same parts always give the same key."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


def fit_key(key: str) -> str:
    """Keys over 255 characters are replaced by a stable hash of themselves rather than refused."""
    return key if len(key) <= DEDUP_KEY_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


_SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(
        [
            "critical",
            "crit",
            "page",
            "emergency",
            "emerg",
            "alert",
            "fatal",
            "disaster",
            "high",
            "p1",
            "sev1",
            "1",
        ],
        Severity.critical,
    ),
    **dict.fromkeys(["error", "err", "major", "p2", "sev2", "2"], Severity.error),
    **dict.fromkeys(["warning", "warn", "minor", "average", "medium", "p3", "sev3", "3"], Severity.warning),
    **dict.fromkeys(
        [
            "info",
            "informational",
            "information",
            "notice",
            "low",
            "debug",
            "ok",
            "none",
            "p4",
            "p5",
            "sev4",
            "sev5",
            "4",
            "5",
        ],
        Severity.info,
    ),
}


def severity_of(value: Any, default: Severity) -> Severity:
    """A sender's severity word mapped onto ours; unknown or absent gives `default`."""
    return _SEVERITY_WORDS.get(as_text(value).lower(), default)


def action_of(
    value: Any, resolve: Collection[str] = RESOLVE_WORDS, acknowledge: Collection[str] = ACKNOWLEDGE_WORDS
) -> Action:
    """A sender's status word as an action: resolve and acknowledge words, anything else triggers."""
    word = as_text(value).lower()
    if word in resolve:
        return Action.resolve
    if word in acknowledge:
        return Action.acknowledge
    return Action.trigger


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as aware UTC; anything else (or Go's zero time) as None."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def str_map(value: Any) -> dict[str, str]:
    """Labels as a string-to-string map; non-scalar values are dropped."""
    if not isinstance(value, dict):
        return {}
    return {str(k): as_text(v) for k, v in value.items() if not isinstance(v, dict | list)}


def link(href: Any, text: str, **extra: str) -> list[dict[str, str]]:
    """A one-element list holding the link if `href` is an http(s) URL, else an empty list (a sender's
    `javascript:` link must never reach a page)."""
    if not isinstance(href, str) or not href.strip().lower().startswith(("http://", "https://")):
        return []
    return [{"href": clamp(href.strip(), 2000), "text": clamp(text, 200), **extra}]


def fit_raw(value: Any, body_size: int) -> Any:
    """The payload as stored with an alert: kept whole up to 64 KB, else a marker with its start.

    `body_size` is the size of the whole request body `value` came from: when that is small enough, so is
    any part of it, and nothing needs encoding here.
    """
    if body_size <= RAW_MAX:
        return value
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if len(encoded) <= RAW_MAX // 4 or len(encoded.encode()) <= RAW_MAX:
        return value
    return {"truncated": True, "size_bytes": len(encoded.encode()), "head": encoded[:4096]}


def obj(value: Any, where: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else a PayloadError naming `where`."""
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object, got {type_name(value)}")
    return value


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )

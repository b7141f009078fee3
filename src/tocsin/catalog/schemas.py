"""API shapes for services, business areas, components, assets, dependencies and impact."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from tocsin.api_common import In, Out
from tocsin.catalog.dependencies import ItemRef
from tocsin.catalog.models import AssetKind, AssetStatus, ItemKind
from tocsin.catalog.rules import check_http_url, check_slug, check_tier, normalise_tag


def _name() -> Any:
    return Field(min_length=1, max_length=200)


def _text() -> Any:
    return Field(default="", max_length=5000)


SLUG_HELP = "Lowercase letters, digits and hyphens (^[a-z0-9][a-z0-9-]*$), not all digits; unique."
TIER_HELP = "Criticality from 1 (most critical) to 4 (least)."


def _refuse_null(value: Any) -> Any:
    """PATCH: null is only allowed on fields that can be empty; omit a field to leave it unchanged."""
    if value is None:
        raise ValueError("may not be null; omit the field to leave it unchanged")
    return value


def _valid_slug(value: str | None) -> str | None:
    return None if value is None else check_slug(value)


def _valid_tier(value: int | None) -> int | None:
    return None if value is None else check_tier(value)


def _valid_url(value: str | None) -> str | None:
    return None if value is None else check_http_url(value)


def _valid_tag(value: str | None) -> str | None:
    return None if value is None else normalise_tag(value)


# --- business areas --------------------------------------------------------------------------------


class BusinessAreaIn(In):
    name: str = _name()
    description: str = _text()
    owner_user_id: int | None = Field(default=None, description="The accountable person.")


class BusinessAreaPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    owner_user_id: int | None = None

    _not_null = field_validator("name", "description")(_refuse_null)


class BusinessAreaOut(Out):
    id: int
    name: str
    description: str
    owner_user_id: int | None
    created_at: datetime
    updated_at: datetime


class BusinessAreaRef(Out):
    id: int
    name: str


# --- services --------------------------------------------------------------------------------------


class ServiceIn(In):
    slug: str = Field(min_length=1, max_length=80, description=SLUG_HELP)
    name: str = _name()
    description: str = _text()
    owner_team_id: int | None = None
    tier: int = Field(default=3, description=TIER_HELP)
    runbook_url: str | None = Field(default=None, max_length=2000, description="An http(s) URL.")
    business_area_id: int | None = None
    active: bool = True

    _check_slug = field_validator("slug")(_valid_slug)
    _check_tier = field_validator("tier")(_valid_tier)
    _check_url = field_validator("runbook_url")(_valid_url)


class ServicePatch(In):
    slug: str | None = Field(default=None, min_length=1, max_length=80, description=SLUG_HELP)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    owner_team_id: int | None = None
    tier: int | None = Field(default=None, description=TIER_HELP)
    runbook_url: str | None = Field(default=None, max_length=2000)
    business_area_id: int | None = None
    active: bool | None = Field(default=None, description="false archives the service (kept, not offered).")

    _not_null = field_validator("slug", "name", "description", "tier", "active")(_refuse_null)
    _check_slug = field_validator("slug")(_valid_slug)
    _check_tier = field_validator("tier")(_valid_tier)
    _check_url = field_validator("runbook_url")(_valid_url)


class ServiceOut(Out):
    id: int
    slug: str
    name: str
    description: str
    owner_team_id: int | None
    tier: int
    runbook_url: str | None
    business_area_id: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


# --- components ------------------------------------------------------------------------------------


class ComponentIn(In):
    name: str = _name()
    description: str = _text()
    service_id: int | None = Field(default=None, description="The service this is part of, if any.")


class ComponentPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    service_id: int | None = None

    _not_null = field_validator("name", "description")(_refuse_null)


class ComponentOut(Out):
    id: int
    name: str
    description: str
    service_id: int | None
    created_at: datetime
    updated_at: datetime


# --- assets ----------------------------------------------------------------------------------------

TAG_HELP = "Unique; stored in upper case. Letters, digits and . _ / -"


class AssetIn(In):
    tag: str = Field(min_length=1, max_length=80, description=TAG_HELP)
    name: str = _name()
    kind: AssetKind
    description: str = _text()
    location: str = Field(default="", max_length=200)
    owner_team_id: int | None = None
    serial: str | None = Field(default=None, max_length=120)
    status: AssetStatus = AssetStatus.active

    _check_tag = field_validator("tag")(_valid_tag)


class AssetPatch(In):
    tag: str | None = Field(default=None, min_length=1, max_length=80, description=TAG_HELP)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: AssetKind | None = None
    description: str | None = Field(default=None, max_length=5000)
    location: str | None = Field(default=None, max_length=200)
    owner_team_id: int | None = None
    serial: str | None = Field(default=None, max_length=120)
    status: AssetStatus | None = Field(
        default=None, description="retired takes it out of service, on record."
    )

    _not_null = field_validator("tag", "name", "kind", "description", "location", "status")(_refuse_null)
    _check_tag = field_validator("tag")(_valid_tag)


class AssetOut(Out):
    id: int
    tag: str
    name: str
    kind: AssetKind
    description: str
    location: str
    owner_team_id: int | None
    serial: str | None
    status: AssetStatus
    created_at: datetime
    updated_at: datetime


# --- dependencies and impact -----------------------------------------------------------------------


class ItemRefIn(In):
    kind: ItemKind
    id: int | str = Field(description="The numeric id; or a service's slug, or an asset's tag.")

    def ref(self) -> ItemRef:
        return ItemRef(self.kind, self.id)


class DependencyIn(In):
    """`item` depends on `depends_on`: if `depends_on` breaks, `item` is hit."""

    item: ItemRefIn
    depends_on: ItemRefIn
    note: str = Field(default="", max_length=2000, description="Why, or how (e.g. 'reads orders from').")


class ItemSummaryOut(Out):
    kind: ItemKind
    id: int
    name: str
    key: str | None = Field(description="The service's slug or the asset's tag.")
    active: bool
    tier: int | None
    business_area_id: int | None
    distance: int = Field(description="Links away from the item asked about (impact answers only).")


class DependencyOut(Out):
    id: int
    item: ItemSummaryOut
    depends_on: ItemSummaryOut
    note: str
    created_at: datetime


class ImpactOut(Out):
    item: ItemSummaryOut
    impacted: list[ItemSummaryOut] = Field(
        description="Hit if the item breaks (its dependents, transitively)."
    )
    depends_on: list[ItemSummaryOut] = Field(description="What the item needs, transitively.")
    business_areas: list[BusinessAreaRef] = Field(description="Areas of the item and of the services hit.")
    most_critical_tier: int | None = Field(description="Lowest tier number among the item and services hit.")

"""Catalog tables: what can break, who owns it, and what depends on what.

Services, components and assets each own one row in `catalog_items`, a node table with a single id space.
Dependencies are edges between two nodes, so every edge keeps real foreign keys whatever the kinds at
either end, one unique constraint refuses duplicates and one check refuses self-dependency. The node row is
created and removed with its item by mapper events, so any code path that inserts a service gets a node.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    event,
    insert,
    true,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from tocsin.db import Base, BigId, UTCDateTime, utcnow


class ItemKind(StrEnum):
    """What a dependency can point at."""

    service = "service"
    component = "component"
    asset = "asset"


class AssetKind(StrEnum):
    server = "server"
    network = "network"
    vehicle = "vehicle"
    machine = "machine"
    building = "building"
    other = "other"


class AssetStatus(StrEnum):
    active = "active"
    retired = "retired"


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class CatalogItem(Base):
    """A node of the dependency graph; exactly one service, component or asset row points at it."""

    __tablename__ = "catalog_items"
    __table_args__ = (CheckConstraint(_one_of("kind", ItemKind), name="kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ItemKind] = mapped_column(String(20), nullable=False)


class BusinessArea(Base):
    """A line of business (retail, payments, plant 2) that services roll up to for impact reporting."""

    __tablename__ = "business_areas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (CheckConstraint("tier BETWEEN 1 AND 4", name="tier_range"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    tier: Mapped[int] = mapped_column(Integer, nullable=False, default=3)  # 1 = most critical
    runbook_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Catalog-internal references are RESTRICT: the service layer refuses with a 409 first, the
    # database backs it up. Team references are SET NULL: deleting a team must not depend on the catalog.
    business_area_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_areas.id", ondelete="RESTRICT"), index=True
    )
    # Archived services stay referenced by past incidents but leave the pickers.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="RESTRICT"), unique=True, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Component(Base):
    """A part of a service (its database, its queue) or a free-standing shared piece; a service depends
    on each of its components, so a broken component impacts its service."""

    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="RESTRICT"), unique=True, nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Asset(Base):
    """A physical or virtual thing with a tag: a server, a switch, a forklift, a press, a building."""

    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint(_one_of("kind", AssetKind), name="kind"),
        CheckConstraint(_one_of("status", AssetStatus), name="status"),
        Index("ix_assets_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[AssetKind] = mapped_column(String(20), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    location: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    serial: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[AssetStatus] = mapped_column(String(20), nullable=False, default=AssetStatus.active)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="RESTRICT"), unique=True, nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Dependency(Base):
    """`item` depends on `depends_on`: if `depends_on` breaks, `item` is impacted."""

    __tablename__ = "catalog_dependencies"
    __table_args__ = (
        UniqueConstraint("item_id", "depends_on_id"),  # also serves lookups by item_id (downstream walk)
        CheckConstraint("item_id <> depends_on_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_items.id", ondelete="CASCADE"), nullable=False)
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="CASCADE"),
        nullable=False,
        index=True,  # upstream walk
    )
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


KIND_MODELS: dict[ItemKind, type[Service | Component | Asset]] = {
    ItemKind.service: Service,
    ItemKind.component: Component,
    ItemKind.asset: Asset,
}


def _add_node(_mapper: Mapper[Any], connection: Connection, target: Service | Component | Asset) -> None:
    if target.item_id is None:
        kind = next(k for k, model in KIND_MODELS.items() if isinstance(target, model))
        result = connection.execute(insert(CatalogItem).values(kind=kind.value))
        target.item_id = result.inserted_primary_key[0]


def _drop_node(_mapper: Mapper[Any], connection: Connection, target: Service | Component | Asset) -> None:
    connection.execute(delete(CatalogItem).where(CatalogItem.id == target.item_id))


for _model in KIND_MODELS.values():
    event.listen(_model, "before_insert", _add_node)
    event.listen(_model, "after_delete", _drop_node)

"""Imports every domain's models so that Base.metadata is complete (Alembic, schema checks)."""

from tocsin.alerts import models as alerts_models
from tocsin.audit import models as audit_models
from tocsin.auth import models as auth_models
from tocsin.catalog import models as catalog_models
from tocsin.comms import models as comms_models
from tocsin.db import Base
from tocsin.engine import models as engine_models
from tocsin.incidents import models as incidents_models
from tocsin.notify import models as notify_models
from tocsin.oncall import models as oncall_models

# Indexes that migrations create where the database can have them (PostgreSQL with pg_trgm: migration 0002)
# and the models leave out; schema comparisons skip them.
OPTIONAL_INDEXES = frozenset({"ix_incidents_title_trgm", "ix_incidents_description_trgm"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter for schema comparisons: everything but OPTIONAL_INDEXES and SQLite's search table
    (incidents_models.SEARCH_TABLE and the tables FTS5 keeps for it, created by DDL of their own)."""
    if type_ == "table" and name is not None and name.startswith(incidents_models.SEARCH_TABLE):
        return False
    return not (type_ == "index" and name in OPTIONAL_INDEXES)


__all__ = [
    "OPTIONAL_INDEXES",
    "Base",
    "alerts_models",
    "audit_models",
    "auth_models",
    "catalog_models",
    "comms_models",
    "engine_models",
    "incidents_models",
    "include_object",
    "notify_models",
    "oncall_models",
]

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

__all__ = [
    "Base",
    "alerts_models",
    "audit_models",
    "auth_models",
    "catalog_models",
    "comms_models",
    "engine_models",
    "incidents_models",
    "notify_models",
    "oncall_models",
]

"""The audit table: one row per change, each hashing the one before."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, BigInteger, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, JSONType, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    action: Mapped[str] = mapped_column(String(80), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    entity_id: Mapped[str] = mapped_column(String(60), nullable=False)
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditHead(Base):
    """The chain's latest link, so that deleting the newest rows is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


# PostgreSQL: the chain's lock and head in one round trip. Writers queue on an advisory lock, which waiters
# get in the order they asked (a row lock on the head, which every writer updates, is not fair: a waiter
# that arrives while others wait may go first, and under load a few writers waited ten times the median).
# The statements of a VOLATILE function each see a fresh snapshot, so the head read after the lock is the
# one the previous holder committed. The head row is locked as well, which keeps out processes of versions
# that lock only it. No row when the head row is missing (a new database): the caller reads the log.
# Created with the table by the models (tests) and by migration 0003 (its copy of this text).
HEAD_FUNCTION = "tocsin_audit_head"
AUDIT_LOCK_KEY = 7_270_001
_CREATE_HEAD_FUNCTION = DDL(  # type: ignore[no-untyped-call]
    f"CREATE OR REPLACE FUNCTION {HEAD_FUNCTION}() "
    "RETURNS TABLE (seq bigint, hash text, last_seq bigint) LANGUAGE plpgsql VOLATILE AS $$ "
    f"BEGIN PERFORM pg_advisory_xact_lock({AUDIT_LOCK_KEY}); "
    "RETURN QUERY SELECT h.seq::bigint, h.hash::text, (SELECT max(l.seq) FROM audit_log l)::bigint "
    "FROM audit_head h WHERE h.id = 1 FOR UPDATE OF h; END $$"
)
event.listen(AuditHead.__table__, "after_create", _CREATE_HEAD_FUNCTION.execute_if(dialect="postgresql"))
event.listen(
    AuditHead.__table__,
    "after_drop",
    DDL(f"DROP FUNCTION IF EXISTS {HEAD_FUNCTION}()").execute_if(  # type: ignore[no-untyped-call]
        dialect="postgresql"
    ),
)

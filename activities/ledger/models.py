"""The ledger's tables (sqlmodel; the same on SQLite and PostgreSQL) and the canonical
JSON the audit chain hashes. Schema version :data:`SCHEMA_VERSION`; upgrades from one
version to the next are the SQL statements in :data:`MIGRATIONS`."""

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

GENESIS_HASH = "0" * 64
SCHEMA_VERSION = 1
# version -> SQL statements upgrading from version-1 (none yet; v1 is create_all).
MIGRATIONS: dict[int, list[str]] = {}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(ts: datetime) -> str:
    """UTC, microseconds: the same text whatever the backend hands back."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


class Release(SQLModel, table=True):
    __tablename__ = "code_release"
    __table_args__ = (
        UniqueConstraint("service", "environment", "version", "workflow_id", name="uq_release"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str = Field(index=True)
    version: str
    status: str = Field(index=True)
    actor: str
    strategy: str = ""
    workflow_id: str
    detail: str = ""
    spec_json: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, index=True)
    idempotency_key: str | None = Field(default=None, unique=True)  # the last key applied


class LedgerRequest(SQLModel, table=True):
    """Every idempotency key ever applied (the release row only keeps the last one)."""

    __tablename__ = "code_ledger_request"

    key: str = Field(primary_key=True)
    release_id: int
    created_at: datetime = Field(default_factory=utc_now)


class AuditRecord(SQLModel, table=True):
    __tablename__ = "code_audit"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    ts: datetime
    actor: str
    action: str
    subject: str
    detail_json: str = "{}"
    prev_hash: str
    hash: str

    def payload(self) -> str:
        return canonical_json(
            {
                "seq": self.seq,
                "ts": iso_utc(self.ts),
                "actor": self.actor,
                "action": self.action,
                "subject": self.subject,
                "detail_json": self.detail_json,
            }
        )


class AuditHead(SQLModel, table=True):
    """One row: the chain head. Locked (FOR UPDATE) by every append."""

    __tablename__ = "code_audit_head"

    id: int = Field(default=1, primary_key=True)
    next_seq: int = 0
    last_hash: str = GENESIS_HASH


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "code_schema_version"

    id: int = Field(default=1, primary_key=True)
    version: int


TABLES = (Release, LedgerRequest, AuditRecord, AuditHead, SchemaVersion)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

"""The release ledger and its hash-chained audit log (sqlmodel; SQLite or PostgreSQL).

Contract
--------
* ``Ledger(url)`` creates the schema on start (``create_all`` plus the
  ``code_schema_version`` table; pending migrations in ``MIGRATIONS`` are applied in
  order). The same models and queries run on SQLite (default) and PostgreSQL.
* ``record(LedgerRecordInput)`` upserts the release row keyed by
  (service, environment, version, workflow_id) and sets its status. It is idempotent on
  ``idempotency_key``: every key ever applied is kept in ``code_ledger_request``, so a
  replayed call (even after later status changes) returns ``changed=False`` and writes
  nothing. Every status change appends an audit record
  (``action=f"release.{status}"``, ``subject=f"{service}/{environment}@{version}"``) in
  the same transaction.
* ``last_known_good`` returns the most recently promoted release (status ``promoted``,
  newest ``updated_at``) of a service/environment, excluding ``exclude_version`` (or only
  ``only_version``), with its spec parsed back into a ``DeploymentSpec``.
* ``audit(...)`` appends to the chain: ``hash = rust_core.chain_hash(prev_hash, payload)``
  where ``payload`` is the canonical JSON of (seq, ts, actor, action, subject,
  detail_json) and the genesis ``prev_hash`` is ``"0" * 64``. Appends are serialized
  (``SELECT ... FOR UPDATE`` on the chain-head row on PostgreSQL; ``BEGIN IMMEDIATE``
  plus a process lock on SQLite) so the chain never forks. ``seq`` starts at 0, so it
  equals the record's index in the chain.
* ``verify_audit()`` returns ``None`` when the chain is intact, else the seq (index)
  of the first broken record (``rust_core.verify_chain``).
* ``LedgerActivities`` exposes ``record``/``last_known_good`` as Temporal activities,
  runs the blocking DB calls in a thread and maps an unreachable database to the
  retryable :class:`LedgerUnavailable` (a ``ServerUnavailable``) whose message names the
  URL with its password masked. The engine pings pooled connections before use
  (``pool_pre_ping``), so calls succeed again as soon as the server is back.
"""

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import UniqueConstraint, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select
from temporalio import activity

from code_foundation.errors import ServerUnavailable
from code_foundation.names import A
from workflows.models import LastGoodInput, LastGoodResult, LedgerRecordInput, LedgerRecordResult
from workflows.spec import DeploymentSpec

GENESIS_HASH = "0" * 64
SCHEMA_VERSION = 1
# version -> SQL statements upgrading from version-1 (none yet; v1 is create_all).
MIGRATIONS: dict[int, list[str]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime) -> str:
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
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now, index=True)
    idempotency_key: str | None = Field(default=None, unique=True)  # the last key applied


class LedgerRequest(SQLModel, table=True):
    """Every idempotency key ever applied (the release row only keeps the last one)."""

    __tablename__ = "code_ledger_request"

    key: str = Field(primary_key=True)
    release_id: int
    created_at: datetime = Field(default_factory=_now)


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
                "ts": _iso(self.ts),
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


_MODELS = (Release, LedgerRequest, AuditRecord, AuditHead, SchemaVersion)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _chain_functions() -> tuple[Callable[[str, str], str], Callable[[list[Any]], int | None]]:
    """``rust_core``'s hashing (native)."""
    import rust_core

    return rust_core.chain_hash, rust_core.verify_chain


_UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError)


class Ledger:
    """Releases and audit log in one SQL database (see the module docstring)."""

    def __init__(self, url: str, *, lazy: bool = False) -> None:
        """``lazy=True`` defers connecting (and schema creation) to the first call, so a
        worker can start while the database is still down."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            database = make_url(url).database
            if database and database != ":memory:" and not lazy:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(url, **kwargs)
        self._lock = threading.Lock()
        self._init_lock = threading.Lock()
        if self.is_sqlite:
            _sqlite_immediate_transactions(self.engine)
        self._ready = False
        if not lazy:
            self._ensure()

    def _ensure(self) -> None:
        with self._init_lock:
            if not self._ready:
                self._migrate()
                self._ready = True

    # ------------------------------------------------------------ schema
    def _migrate(self) -> None:
        SQLModel.metadata.create_all(
            self.engine,
            tables=[m.__table__ for m in _MODELS],  # type: ignore[union-attr]
        )
        with Session(self.engine) as s:
            row = s.get(SchemaVersion, 1)
            if row is None:
                s.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
                s.add(AuditHead(id=1))
            else:
                for version in range(row.version + 1, SCHEMA_VERSION + 1):
                    for stmt in MIGRATIONS.get(version, []):
                        s.exec(text(stmt))  # type: ignore[call-overload]
                    row.version = version
                    s.add(row)
            s.commit()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if not self._ready:
            self._ensure()
        with self._lock if self.is_sqlite else _nullcontext(), Session(self.engine) as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ audit
    def _append(
        self, s: Session, actor: str, action: str, subject: str, detail: dict[str, Any]
    ) -> AuditRecord:
        """Append one record inside the caller's transaction (head row locked)."""
        chain_hash, _ = _chain_functions()
        head = s.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
        rec = AuditRecord(
            seq=head.next_seq,
            ts=_now(),
            actor=actor,
            action=action,
            subject=subject,
            detail_json=canonical_json(detail),
            prev_hash=head.last_hash,
            hash="",
        )
        rec.hash = chain_hash(rec.prev_hash, rec.payload())
        head.next_seq += 1
        head.last_hash = rec.hash
        s.add(rec)
        s.add(head)
        return rec

    def audit(self, actor: str, action: str, subject: str, detail: dict[str, Any]) -> AuditRecord:
        with self._session() as s:
            rec = self._append(s, actor, action, subject, detail)
            s.commit()
            s.refresh(rec)
            s.expunge(rec)
            return rec

    def audit_records(self) -> list[AuditRecord]:
        with self._session() as s:
            rows = list(s.exec(select(AuditRecord).order_by(col(AuditRecord.seq))))
            for r in rows:
                s.expunge(r)
            return rows

    def verify_audit(self) -> int | None:
        """None when the chain is intact, else the seq (index) of the first broken record."""
        _, verify_chain = _chain_functions()
        rows = self.audit_records()
        for i, r in enumerate(rows):  # a deleted record shows up as a gap in seq
            if r.seq != i:
                return i
        broken = verify_chain([(r.prev_hash, r.payload(), r.hash) for r in rows])
        if broken is None and rows:
            with self._session() as s:
                head = s.get(AuditHead, 1)
                if head is not None and head.last_hash != rows[-1].hash:
                    return rows[-1].seq
        return None if broken is None else rows[broken].seq

    # ------------------------------------------------------------ releases
    def record(self, inp: LedgerRecordInput) -> LedgerRecordResult:
        with self._session() as s:
            # lock the chain head first: serializes writers, so the key check below is exact
            s.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
            done = s.get(LedgerRequest, inp.idempotency_key)
            if done is not None:
                return LedgerRecordResult(release_id=done.release_id, changed=False)
            rel = s.exec(
                select(Release).where(
                    Release.service == inp.service,
                    Release.environment == inp.environment,
                    Release.version == inp.version,
                    Release.workflow_id == inp.workflow_id,
                )
            ).first()
            now = _now()
            status_changed = rel is None or rel.status != inp.status
            if rel is None:
                rel = Release(
                    service=inp.service,
                    environment=inp.environment,
                    version=inp.version,
                    workflow_id=inp.workflow_id,
                    status=inp.status,
                    actor=inp.actor,
                    created_at=now,
                )
            rel.status = inp.status
            rel.actor = inp.actor
            rel.strategy = inp.strategy or rel.strategy
            rel.detail = inp.detail
            if inp.spec is not None:
                rel.spec_json = inp.spec.model_dump_json()
            rel.updated_at = now
            rel.idempotency_key = inp.idempotency_key
            s.add(rel)
            s.flush()
            assert rel.id is not None
            s.add(LedgerRequest(key=inp.idempotency_key, release_id=rel.id, created_at=now))
            if status_changed:
                self._append(
                    s,
                    inp.actor,
                    f"release.{inp.status}",
                    f"{inp.service}/{inp.environment}@{inp.version}",
                    {
                        "workflow_id": inp.workflow_id,
                        "strategy": rel.strategy,
                        "detail": inp.detail,
                        "idempotency_key": inp.idempotency_key,
                    },
                )
            s.commit()
            return LedgerRecordResult(release_id=rel.id, changed=True)

    def last_known_good(self, inp: LastGoodInput) -> LastGoodResult:
        with self._session() as s:
            q = select(Release).where(
                Release.service == inp.service,
                Release.environment == inp.environment,
                Release.status == "promoted",
            )
            if inp.exclude_version is not None:
                q = q.where(Release.version != inp.exclude_version)
            if inp.only_version is not None:
                q = q.where(Release.version == inp.only_version)
            rel = s.exec(q.order_by(col(Release.updated_at).desc(), col(Release.id).desc())).first()
            if rel is None:
                return LastGoodResult()
            spec = DeploymentSpec.model_validate_json(rel.spec_json) if rel.spec_json else None
            return LastGoodResult(version=rel.version, spec=spec, workflow_id=rel.workflow_id)

    def history(
        self, service: str, environment: str | None = None, limit: int = 50
    ) -> list[Release]:
        with self._session() as s:
            q = select(Release).where(Release.service == service)
            if environment is not None:
                q = q.where(Release.environment == environment)
            q = q.order_by(col(Release.updated_at).desc(), col(Release.id).desc()).limit(limit)
            rows = list(s.exec(q))
            for r in rows:
                s.expunge(r)
            return rows

    def current(self, service: str, environment: str) -> Release | None:
        """The release currently live: the newest promoted one."""
        with self._session() as s:
            q = (
                select(Release)
                .where(
                    Release.service == service,
                    Release.environment == environment,
                    Release.status == "promoted",
                )
                .order_by(col(Release.updated_at).desc(), col(Release.id).desc())
            )
            rel = s.exec(q).first()
            if rel is not None:
                s.expunge(rel)
            return rel


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield


def _sqlite_immediate_transactions(engine: Engine) -> None:
    """pysqlite's deferred BEGIN lets two writers read the same chain head; take the
    write lock up front instead (the SQLAlchemy-documented recipe)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class LedgerUnavailable(ServerUnavailable):
    """The ledger database cannot be reached; retry (the pool reconnects by itself)."""

    @classmethod
    def of(cls, exc: BaseException, url: str) -> "LedgerUnavailable":
        """The error naming the database (password masked) and the driver's reason."""
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return cls(
            f"ledger database {where} unreachable ({type(exc).__name__}: "
            f"{(reason[0] if reason else '')[:300]}); will retry: check that the database "
            "server is running and reachable (CODE_LEDGER_URL)"
        )


class LedgerActivities:
    """Temporal activities over a :class:`Ledger` (blocking calls run in a thread)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except _UNREACHABLE as exc:
            raise LedgerUnavailable.of(exc, self.ledger.url) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise LedgerUnavailable.of(exc, self.ledger.url) from exc
            raise

    @activity.defn(name=A.LEDGER_RECORD)
    async def record(self, inp: LedgerRecordInput) -> LedgerRecordResult:
        result: LedgerRecordResult = await self._call(self.ledger.record, inp)
        return result

    @activity.defn(name=A.LEDGER_LAST_GOOD)
    async def last_known_good(self, inp: LastGoodInput) -> LastGoodResult:
        result: LastGoodResult = await self._call(self.ledger.last_known_good, inp)
        return result

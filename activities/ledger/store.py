"""``Ledger``: releases and the hash-chained audit log in one SQL database (the contract
is in :mod:`activities.ledger`). Blocking; :mod:`activities.ledger.activities` runs it
from Temporal activities."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, col, create_engine, select

from activities.ledger.models import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    AuditHead,
    AuditRecord,
    LedgerRequest,
    Release,
    SchemaVersion,
    canonical_json,
    utc_now,
)
from workflows.models import LastGoodInput, LastGoodResult, LedgerRecordInput, LedgerRecordResult
from workflows.spec import DeploymentSpec


def _chain_functions() -> tuple[Callable[[str, str], str], Callable[[list[Any]], int | None]]:
    """``rust_core``'s hashing (native)."""
    import rust_core

    return rust_core.chain_hash, rust_core.verify_chain


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
            tables=[m.__table__ for m in TABLES],  # type: ignore[union-attr]
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
            ts=utc_now(),
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
            now = utc_now()
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
            if rel.id is None:  # flush assigns the primary key
                raise RuntimeError(f"the ledger database assigned no id to release {rel.version}")
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

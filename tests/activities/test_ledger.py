"""The ledger against SQLite and a real PostgreSQL 15: every test in this module runs on
both backends (``ledger_url`` is parametrised). PostgreSQL is started by
``tests.servers.postgres_server`` (initdb + postgres on 127.0.0.1, free port). The outage
test (PostgreSQL only) runs its own short-lived server (``tests.servers.PostgresCluster``)."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from temporalio.exceptions import ApplicationError

from activities.interceptor import mapped
from activities.ledger import GENESIS_HASH, Ledger, LedgerActivities
from tests.servers import (  # noqa: F401 - fixtures
    PostgresCluster,
    free_port,
    postgres_server,
    postgres_url,
)
from workflows.models import LastGoodInput, LedgerRecordInput
from workflows.spec import DeploymentSpec


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger(ledger_url)
    yield led
    led.close()


def spec(version: str, service: str = "web", env: str = "prod") -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {"service": service, "environment": env, "version": version,
         "artifact": {"image": f"web:{version}"}}
    )  # fmt: skip


def rec(version: str, status: str, key: str, **kw: Any) -> LedgerRecordInput:
    base: dict[str, Any] = dict(
        service="web",
        environment="prod",
        version=version,
        status=status,
        actor="alice",
        workflow_id=f"deploy-web-prod-{version}",
        strategy="canary",
        idempotency_key=key,
    )
    base.update(kw)
    return LedgerRecordInput(**base)


def deploy(ledger: Ledger, version: str, final: str = "promoted", **kw) -> None:
    ledger.record(rec(version, "in_progress", f"{version}-start", spec=spec(version), **kw))
    ledger.record(rec(version, final, f"{version}-end", **kw))


def test_schema_created_on_start_and_reopen_is_harmless(ledger_url: str) -> None:
    a = Ledger(ledger_url)
    deploy(a, "v1")
    a.close()
    b = Ledger(ledger_url)  # second start: schema exists, version row kept, data kept
    assert [r.version for r in b.history("web")] == ["v1"]
    with b.engine.connect() as c:
        assert c.execute(text("SELECT version FROM code_schema_version")).scalar() == 1
    b.close()


def test_sqlite_parent_directory_created(tmp_path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'new' / 'state' / 'ledger.db'}")
    assert (tmp_path / "new" / "state" / "ledger.db").exists()
    led.close()


def test_record_is_idempotent_on_key(ledger: Ledger) -> None:
    first = ledger.record(rec("v1", "in_progress", "k1", spec=spec("v1")))
    assert first.changed
    audits = len(ledger.audit_records())
    again = ledger.record(rec("v1", "in_progress", "k1", spec=spec("v1")))
    assert (again.release_id, again.changed) == (first.release_id, False)
    assert len(ledger.audit_records()) == audits
    # a later status, then a replay of the *earlier* key: nothing reverts
    assert ledger.record(rec("v1", "promoted", "k2")).changed
    replay = ledger.record(rec("v1", "in_progress", "k1"))
    assert not replay.changed
    [row] = ledger.history("web")
    assert row.status == "promoted" and row.idempotency_key == "k2"
    assert row.spec_json is not None  # kept from the first call


def test_every_status_change_is_audited(ledger: Ledger) -> None:
    ledger.record(rec("v1", "intent", "a"))
    ledger.record(rec("v1", "in_progress", "b"))
    ledger.record(rec("v1", "in_progress", "c", detail="same status, new detail"))
    assert ledger.history("web")[0].detail == "same status, new detail"
    ledger.record(rec("v1", "promoted", "d", detail="done"))
    actions = [(r.action, r.subject, r.actor) for r in ledger.audit_records()]
    assert actions == [
        ("release.intent", "web/prod@v1", "alice"),
        ("release.in_progress", "web/prod@v1", "alice"),
        ("release.promoted", "web/prod@v1", "alice"),
    ]
    assert ledger.history("web")[0].detail == "done"


def test_last_known_good(ledger: Ledger) -> None:
    assert ledger.last_known_good(LastGoodInput(service="web", environment="prod")).version is None
    deploy(ledger, "v1")
    deploy(ledger, "v2")
    deploy(ledger, "v3", final="rolled_back")
    ledger.record(
        rec("v9", "promoted", "stg", environment="staging", spec=spec("v9", env="staging"))
    )

    got = ledger.last_known_good(LastGoodInput(service="web", environment="prod"))
    assert got.version == "v2" and got.workflow_id == "deploy-web-prod-v2"
    assert got.spec == spec("v2")  # parsed back into a DeploymentSpec
    got = ledger.last_known_good(
        LastGoodInput(service="web", environment="prod", exclude_version="v2")
    )
    assert got.version == "v1"
    assert ledger.last_known_good(LastGoodInput(service="api", environment="prod")).version is None
    only = ledger.last_known_good(
        LastGoodInput(service="web", environment="prod", only_version="v1")
    )
    assert only.version == "v1" and only.spec == spec("v1")
    none = LastGoodInput(service="web", environment="prod", only_version="v3")  # rolled back
    assert ledger.last_known_good(none).version is None
    # re-promoting v1 later makes it the newest good one
    ledger.record(rec("v1", "promoted", "v1-again", workflow_id="rollback-web-prod-1"))
    assert ledger.last_known_good(LastGoodInput(service="web", environment="prod")).version == "v1"
    cur = ledger.current("web", "prod")
    assert cur is not None and cur.version == "v1"


def test_history(ledger: Ledger) -> None:
    for i in range(5):
        deploy(ledger, f"v{i}")
    ledger.record(rec("s1", "promoted", "s1", environment="staging"))
    hist = ledger.history("web", "prod")
    assert [r.version for r in hist] == ["v4", "v3", "v2", "v1", "v0"]
    assert [r.version for r in ledger.history("web", limit=2)] == ["s1", "v4"]
    assert {r.environment for r in ledger.history("web")} == {"prod", "staging"}
    assert ledger.history("nothing") == []
    assert ledger.current("web", "staging").version == "s1"  # type: ignore[union-attr]


def test_audit_chain_intact_then_tampering_detected(ledger: Ledger, ledger_url: str) -> None:
    assert ledger.verify_audit() is None  # empty chain
    first = ledger.audit("alice", "config.change", "web/prod", {"replicas": 3})
    assert first.seq == 0 and first.prev_hash == GENESIS_HASH and len(first.hash) == 64
    for i in range(4):
        ledger.audit("bob", "approve", f"web/prod@v{i}", {"i": i, "note": "ok ✓"})
    records = ledger.audit_records()
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
    assert ledger.verify_audit() is None

    # tamper with record 2 directly in the database, bypassing the ledger
    raw = create_engine(ledger_url)
    with raw.begin() as c:
        c.execute(
            text("UPDATE code_audit SET detail_json = :d WHERE seq = 2"),
            {"d": json.dumps({"i": 99})},
        )
    raw.dispose()
    assert ledger.verify_audit() == 2


def test_tampered_hash_and_deleted_record_detected(ledger: Ledger, ledger_url: str) -> None:
    for i in range(4):
        ledger.audit("carol", "x", "s", {"i": i})
    raw = create_engine(ledger_url)
    with raw.begin() as c:  # rewrite record 3's actor AND recompute nothing: hash mismatch
        c.execute(text("UPDATE code_audit SET actor = 'mallory' WHERE seq = 3"))
    assert ledger.verify_audit() == 3
    with raw.begin() as c:
        c.execute(text("UPDATE code_audit SET actor = 'carol' WHERE seq = 3"))
    assert ledger.verify_audit() is None
    with raw.begin() as c:
        c.execute(text("DELETE FROM code_audit WHERE seq = 1"))
    raw.dispose()
    assert ledger.verify_audit() == 1


def test_concurrent_appends_never_fork(ledger: Ledger, ledger_url: str) -> None:
    other = Ledger(ledger_url)  # a second engine/pool: like a second worker process
    errors: list[BaseException] = []

    def work(led: Ledger, who: str) -> None:
        try:
            for i in range(10):
                led.audit(who, "tick", "chain", {"i": i})
                led.record(rec(f"{who}{i}", "promoted", f"{who}-{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(led, f"w{n}"))
        for n, led in enumerate([ledger, ledger, other, other])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    other.close()
    assert not errors, errors
    records = ledger.audit_records()
    assert [r.seq for r in records] == list(range(80))
    assert ledger.verify_audit() is None


async def test_activities_record_and_last_good(ledger: Ledger) -> None:
    acts = LedgerActivities(ledger)
    r = await acts.record(rec("v1", "promoted", "k", spec=spec("v1")))
    assert r.changed
    assert not (await acts.record(rec("v1", "promoted", "k"))).changed
    got = await acts.last_known_good(LastGoodInput(service="web", environment="prod"))
    assert got.version == "v1"


async def test_unreachable_database_is_retryable_ledger_unavailable(
    ledger_url: str, tmp_path
) -> None:
    if ledger_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    else:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nope"
    acts = LedgerActivities(Ledger(url, lazy=True))
    with pytest.raises(ApplicationError) as info:
        await mapped(acts.last_known_good)(LastGoodInput(service="web", environment="prod"))
    assert info.value.type == "LedgerUnavailable"
    assert not info.value.non_retryable
    assert "unreachable" in str(info.value)


def test_cli_audit_verify(ledger: Ledger, ledger_url: str, monkeypatch) -> None:
    from typer.testing import CliRunner

    from workers.cli.audit import audit_app
    from workers.cli.config import config_app

    monkeypatch.setenv("CODE_LEDGER_URL", ledger_url)
    monkeypatch.setenv("CODE_VAULT_TOKEN", "s3cr3t-token")
    ledger.audit("alice", "x", "s", {})
    ledger.audit("alice", "y", "s", {})
    runner = CliRunner()
    ok = runner.invoke(audit_app, ["verify"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "2 record" in ok.output
    raw = create_engine(ledger_url)
    with raw.begin() as c:
        c.execute(text("UPDATE code_audit SET subject = 'forged' WHERE seq = 1"))
    raw.dispose()
    bad = runner.invoke(audit_app, ["verify"])
    assert bad.exit_code == 1
    assert "seq 1" in bad.output
    shown = runner.invoke(config_app, ["show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert "s3cr3t-token" not in shown.output and "********" in shown.output


async def test_postgres_down_mid_run_is_retryable_then_recovers() -> None:
    """PostgreSQL only: a dedicated server is stopped between two calls and started again
    on the same data directory and port; the ledger's pool recovers (``pool_pre_ping``)."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="code-pg-outage-")))
    led: Ledger | None = None
    try:
        cluster.start()
        srv = cluster.server
        password = "pw-hunter2-never-shown"  # trust auth ignores it; it must not leak
        led = Ledger(f"postgresql+psycopg2://{srv.user}:{password}@{srv.host}:{srv.port}/postgres")
        acts = LedgerActivities(led)
        assert (await acts.record(rec("v1", "in_progress", "v1-start", spec=spec("v1")))).changed

        cluster.stop()
        with pytest.raises(OperationalError):  # the blocking API: SQLAlchemy's own error
            led.record(rec("v1", "promoted", "v1-end"))
        with pytest.raises(ApplicationError) as info:
            await mapped(acts.record)(rec("v1", "promoted", "v1-end"))
        err = info.value
        assert err.type == "LedgerUnavailable" and not err.non_retryable
        msg = str(err)
        assert "unreachable" in msg and f"{srv.host}:{srv.port}" in msg and "***" in msg
        chain: list[str] = []
        cause: BaseException | None = err
        while cause is not None:  # the cause travels with the Temporal failure too
            chain.append(str(cause))
            cause = cause.__cause__
        assert not any(password in text for text in chain)

        cluster.start()  # same data directory, same port
        again = await acts.record(rec("v1", "promoted", "v1-end"))
        assert again.changed
        assert [(r.version, r.status) for r in led.history("web")] == [("v1", "promoted")]
        assert [r.action for r in led.audit_records()] == [
            "release.in_progress",
            "release.promoted",
        ]
        assert led.verify_audit() is None
    finally:
        if led is not None:
            led.close()
        cluster.remove()

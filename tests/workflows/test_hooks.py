"""Lifecycle hooks on a Temporal server with the real ``hooks.run`` activity calling a
real HTTP receiver on loopback (the platform is the in-memory fake: only the
orchestration and the hook calls are under test here).

- every hook point of a canary is called in order, with the run's fields;
- a ``confirm_promotion`` gate holds the run until the receiver answers 200 (dev
  server, real time);
- gate deadlines on the time-skipping server: ``on_timeout: fail`` rolls back (or
  applies nothing for ``confirm_rollout``), ``on_timeout: proceed`` promotes;
- a failing ``rollout`` check rolls the canary back after its retries, then the
  ``rollback`` hooks run;
- a command hook runs its argv with no shell, and its exit code decides;
- a secret header reaches the receiver and never the history or the status;
- a hook to a non-loopback address is refused and fails the run."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.hooks import HookActivities
from activities.interceptor import ErrorInterceptor
from activities.settings import Settings
from tests.receiver import Call, Receiver
from tests.waiting import wait_until_async
from tests.workflows.fakes import FakePlatform
from workflows.deployment import DeploymentWorkflow
from workflows.lane import ReleaseLaneWorkflow
from workflows.models import DeployInput, DeployResult, DeployStatus
from workflows.outcome import deploy_result_from_failure
from workflows.rollback import RollbackWorkflow
from workflows.spec import DeploymentSpec, parse_spec

CANARY = """
      - set_weight: 20
      - pause: {duration: 1h}
      - set_weight: 60
"""


def spec(version: str, hooks: str = "", steps: str = CANARY) -> DeploymentSpec:
    return parse_spec(
        f"""
service: shop
environment: prod
version: {version}
artifact: {{command: ["{{python}}", "svc.py"]}}
strategy:
  type: canary
  canary:
    steps:
{steps}
hooks:
{hooks or "  []"}
"""
    )


def http_hook(name: str, at: str, url: str, **extra: str) -> str:
    more = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return f"  - name: {name}\n    at: {at}\n    http: {{url: '{url}/{name}'}}\n{more}"


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def worker(env: WorkflowEnvironment, fake: FakePlatform) -> tuple[Worker, str]:
    tq = f"tq-{uuid.uuid4()}"
    return (
        Worker(
            env.client,
            task_queue=tq,
            workflows=[DeploymentWorkflow, RollbackWorkflow, ReleaseLaneWorkflow],
            activities=[*fake.activities(), HookActivities(Settings()).run],
            interceptors=[ErrorInterceptor()],
        ),
        tq,
    )


async def start(env: WorkflowEnvironment, s: DeploymentSpec, tq: str) -> WorkflowHandle:
    return await env.client.start_workflow(
        DeploymentWorkflow.run,
        DeployInput(spec=s, actor="tester", set_search_attributes=False),
        id=f"deploy-{uuid.uuid4()}",
        task_queue=tq,
        result_type=DeployResult,
    )


async def result(handle: WorkflowHandle) -> DeployResult:
    """The run's result, also when it ended FAILED carrying it (not promoted)."""
    try:
        res: DeployResult = await handle.result()
        return res
    except WorkflowFailureError as err:
        got = deploy_result_from_failure(err)
        if got is not None:
            return got
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)  # nothing applied
        return DeployResult(
            workflow_id=st.workflow_id,
            outcome=st.outcome,
            version=st.version,
            previous_version=None,
            reason=st.reason,
        )


async def first_release(env: WorkflowEnvironment, tq: str) -> None:
    assert (await result(await start(env, spec("v1"), tq))).outcome == "promoted"


async def test_every_hook_point_is_called_in_order_with_the_runs_fields(
    ts_env: WorkflowEnvironment, receiver: Receiver
) -> None:
    fake = FakePlatform()
    u = receiver.url
    hooks = "".join(
        http_hook(name, name, u)
        for name in (
            "confirm_rollout",
            "pre_rollout",
            "rollout",
            "confirm_traffic_increase",
            "confirm_promotion",
            "post_rollout",
        )
    )
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        assert receiver.calls == []  # v1 has no hooks
        handle = await start(ts_env, spec("v2", hooks), tq)
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == "promoted", res.reason
    got = [(c.json()["point"], c.json()["step"], c.json()["weight"]) for c in receiver.calls]
    assert got == [
        ("confirm_rollout", -1, None),
        ("pre_rollout", -1, None),
        ("confirm_traffic_increase", 0, 20),
        ("rollout", 0, 20),
        ("rollout", 1, 20),
        ("confirm_traffic_increase", 2, 60),
        ("rollout", 2, 60),
        ("confirm_promotion", -1, None),
        ("post_rollout", -1, None),
    ]
    body = receiver.calls[0].json()
    assert body["service"] == "shop" and body["environment"] == "prod"
    assert body["version"] == "v2" and body["previous_version"] == "v1"
    assert body["workflow_id"] == handle.id and body["attempt"] == 1
    assert all(c.method == "POST" for c in receiver.calls)
    assert [h.status for h in st.hooks] == ["passed"] * 9
    assert all(h.code == 200 and h.excerpt == '{"ok": true}' for h in st.hooks)
    step0 = next(r for r in st.steps if r.index == 0 and r.kind == "set_weight")
    assert step0.detail == "hook rollout: passed"


async def test_confirm_promotion_gate_holds_until_the_receiver_answers_200(
    dev_env: WorkflowEnvironment, receiver: Receiver
) -> None:
    fake = FakePlatform()
    ready = {"ok": False}

    def respond(c: Call) -> tuple[int, str]:
        if c.path == "/confirm_promotion" and not ready["ok"]:
            return 503, '{"state": "waiting for QA"}'
        return 200, "{}"

    receiver.respond = respond
    hooks = http_hook("confirm_promotion", "confirm_promotion", receiver.url, interval="200ms")
    w, tq = worker(dev_env, fake)
    async with w:
        await first_release(dev_env, tq)
        handle = await start(dev_env, spec("v2", hooks, "      - set_weight: 50\n"), tq)

        async def polled_thrice() -> DeployStatus | None:
            st: DeployStatus = await handle.query(DeploymentWorkflow.status)
            return st if st.hooks and st.hooks[-1].attempts >= 3 else None

        st = await wait_until_async(polled_thrice, 30, "three polls of the gate")
        assert st.outcome == "running" and st.weights == {"v1": 50, "v2": 50}
        assert st.hooks[-1].status == "failed" and st.hooks[-1].code == 503
        assert "waiting for QA" in st.hooks[-1].excerpt
        assert "waiting for gate hook confirm_promotion" in st.reason
        assert fake.weights == {"v1": 50, "v2": 50}  # not promoted while the gate holds
        ready["ok"] = True
        res = await result(handle)
    assert res.outcome == "promoted", res.reason
    assert fake.weights == {"v2": 100}
    polls = receiver.to("/confirm_promotion")
    assert len(polls) >= 4 and [c.json()["attempt"] for c in polls] == list(
        range(1, len(polls) + 1)
    )


@pytest.mark.parametrize(
    ("on_timeout", "outcome"), [("fail", "rolled_back"), ("proceed", "promoted")]
)
async def test_gate_deadline_follows_on_timeout(
    ts_env: WorkflowEnvironment, receiver: Receiver, on_timeout: str, outcome: str
) -> None:
    fake = FakePlatform()
    receiver.respond = lambda c: (503, "{}")
    hooks = http_hook(
        "confirm_promotion",
        "confirm_promotion",
        receiver.url,
        interval="30m",
        deadline="6h",
        on_timeout=on_timeout,
    )
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        handle = await start(ts_env, spec("v2", hooks), tq)
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == outcome, res.reason
    # polls at 0, 30m, ..., 6h: 13 calls, then the deadline
    assert len(receiver.calls) == 13
    assert st.hooks[-1].status == f"timed out ({on_timeout})" and st.hooks[-1].attempts == 13
    if on_timeout == "fail":
        assert "did not pass within 6:00:00" in res.reason
        assert fake.weights == {"v1": 100}
    else:
        assert fake.weights == {"v2": 100}


async def test_confirm_rollout_deadline_applies_nothing(
    ts_env: WorkflowEnvironment, receiver: Receiver
) -> None:
    fake = FakePlatform()
    receiver.respond = lambda c: (409, '{"frozen": true}')
    hooks = http_hook(
        "confirm_rollout", "confirm_rollout", receiver.url, deadline="2h", interval="20m"
    )
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        res = await result(await start(ts_env, spec("v2", hooks), tq))
    assert res.outcome == "failed" and "confirm_rollout" in res.reason
    assert "v2" not in fake.running and fake.weights == {"v1": 100}
    assert len(receiver.calls) == 7  # at 0, 20m, ..., 2h


async def test_failing_rollout_check_rolls_back_then_rollback_hooks_run(
    ts_env: WorkflowEnvironment, receiver: Receiver
) -> None:
    fake = FakePlatform()
    receiver.respond = lambda c: (
        (500, '{"tests": "3 failed"}')
        if c.path == "/rollout" and c.json()["step"] == 1
        else (200, "{}")
    )
    hooks = http_hook("rollout", "rollout", receiver.url, retries="2", retry_interval="1m")
    hooks += http_hook("rollback", "rollback", receiver.url)
    hooks += http_hook("post_rollout", "post_rollout", receiver.url)
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        handle = await start(ts_env, spec("v2", hooks), tq)
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == "rolled_back", res.reason
    assert "hook rollout (rollout) failed after 3 attempt(s): status 500 is not 2xx" in res.reason
    assert fake.weights == {"v1": 100} and "v2" not in fake.running
    assert [(c.path, c.json()["step"]) for c in receiver.calls] == [
        ("/rollout", 0),
        ("/rollout", 1),
        ("/rollout", 1),
        ("/rollout", 1),
        ("/rollback", -1),
    ]
    failed = [h for h in st.hooks if h.status == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 3 and "3 failed" in failed[0].excerpt
    assert st.hooks[-1].point == "rollback" and st.hooks[-1].status == "passed"


def decoded(doc: Any) -> str:
    """Every string of a history, payload data base64-decoded (what a reader could see)."""
    out: list[str] = []

    def walk(v: Any, key: str = "") -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str):
            out.append(base64.b64decode(v).decode(errors="replace") if key == "data" else v)

    walk(doc)
    return "\n".join(out)


def command_hook(name: str, at: str, argv: list[str], exit_code: int = 0) -> str:
    return (
        f"  - name: {name}\n    at: {at}\n"
        f"    command: {{argv: {json.dumps(argv)}, exit_code: {exit_code}, "
        f"env: {{HOOK_EXIT: '3'}}}}\n"
    )


SCRIPT = (
    "import json, os, sys; "
    "open(sys.argv[1], 'w').write(json.dumps([sys.argv[2:], os.environ['CODE_HOOK_VERSION']])); "
    "print('checked', sys.argv[2]); sys.exit(int(os.environ['HOOK_EXIT']))"
)


@pytest.mark.parametrize(("expected", "outcome"), [(3, "promoted"), (0, "rolled_back")])
async def test_command_hook_runs_argv_without_a_shell_and_its_exit_code_decides(
    ts_env: WorkflowEnvironment, tmp_path: Path, expected: int, outcome: str
) -> None:
    fake = FakePlatform()
    out = tmp_path / "argv.json"
    argv = ["{python}", "-c", SCRIPT, str(out), "a b; exit 1", "$HOME", "`id`"]
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        handle = await start(
            ts_env, spec("v2", command_hook("suite", "pre_rollout", argv, expected)), tq
        )
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == outcome, res.reason
    # the arguments arrived as written: no shell split, expanded or substituted them
    assert json.loads(out.read_text()) == [["a b; exit 1", "$HOME", "`id`"], "v2"]
    hook = st.hooks[0]
    assert hook.kind == "command" and hook.code == 3
    assert hook.excerpt == "checked a b; exit 1\n"
    assert hook.status == ("passed" if expected == 3 else "failed")


async def test_secret_header_reaches_the_receiver_but_never_history_or_status(
    ts_env: WorkflowEnvironment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("HOOK_TEST_TOKEN", token)
    receiver.respond = lambda c: (200, json.dumps({"echo": c.headers.get("Authorization")}))
    hooks = (
        "  - name: pre\n    at: pre_rollout\n    http:\n"
        f"      url: '{receiver.url}/pre'\n      method: PUT\n"
        "      headers: {X-Team: payments}\n"
        "      secret_headers: {Authorization: 'Bearer env:HOOK_TEST_TOKEN'}\n"
        '      body: \'{"v": "${version}", "svc": "${service}"}\'\n'
        "      success: {status: [200], json_path: $.echo, regex: Bearer}\n"
    )
    fake = FakePlatform()
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        handle = await start(ts_env, spec("v2", hooks), tq)
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
        history = decoded((await handle.fetch_history()).to_json_dict())
    assert res.outcome == "promoted", res.reason
    call = receiver.to("/pre")[0]
    assert call.method == "PUT" and call.headers["Authorization"] == f"Bearer {token}"
    assert call.headers["X-Team"] == "payments"
    assert call.json() == {"v": "v2", "svc": "shop"}
    assert st.hooks[0].excerpt == '{"echo": "Bearer ********"}'
    assert token not in history and token not in st.model_dump_json()
    assert "env:HOOK_TEST_TOKEN" in history  # only the reference is recorded


async def test_hook_to_a_non_loopback_target_is_refused(ts_env: WorkflowEnvironment) -> None:
    fake = FakePlatform()
    hooks = "  - name: ext\n    at: pre_rollout\n    http: {url: 'http://10.255.0.1:9/x'}\n"
    w, tq = worker(ts_env, fake)
    async with w:
        await first_release(ts_env, tq)
        handle = await start(ts_env, spec("v2", hooks), tq)
        res = await result(handle)
        st: DeployStatus = await handle.query(DeploymentWorkflow.status)
    assert res.outcome == "rolled_back"
    assert st.hooks[0].status == "error" and "is not loopback" in st.hooks[0].message
    assert "allowed_targets" in st.hooks[0].message


def test_spec_refuses_bad_hooks() -> None:
    from code_foundation.errors import SpecError

    with pytest.raises(SpecError) as err:
        spec("v2", "  - {name: a, at: rollout}\n")
    assert "set exactly one of http or command" in str(err.value)
    with pytest.raises(SpecError) as err:
        spec("v2", "  - {name: a, at: nowhere, command: {argv: [x]}}\n")
    assert "at" in str(err.value)
    with pytest.raises(SpecError) as err:
        spec("v2", "  - {name: a, at: rollout, command: {argv: [x]}}\n" * 2)
    assert "repeated: a" in str(err.value)
    assert spec("v2").hooks == []

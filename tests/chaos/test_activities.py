"""Defence in depth inside the activities: the inject activity re-checks
protected services/environments, the probe activity re-checks loopback (even
for an experiment built without validation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.chaos import ChaosActivities
from activities.interceptor import mapped
from activities.settings import Settings
from chaos.blast import Target
from chaos.messages import InjectInput, ProbeInput
from chaos.model import Action, HttpProbe, Selector


def acts(tmp_path: Path) -> ChaosActivities:
    return ChaosActivities(Settings(agent_url="http://127.0.0.1:1", state_dir=tmp_path))


async def test_inject_refuses_protected_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE_CHAOS_PROTECTED_ENVIRONMENTS", raising=False)
    sel = Selector.model_construct(
        service="demo",
        environment="production",
        platform="local",
        version=None,
        labels={},
        mode="one",
    )
    action = Action.model_construct(name="k", fault="kill_instance", target=sel, params={})
    target = Target(service="demo", environment="production", version="v1", index=0)
    with pytest.raises(ApplicationError) as ei:
        await ActivityEnvironment().run(
            mapped(acts(tmp_path).inject), InjectInput(key="k", action=action, target=target)
        )
    assert ei.value.type == "ProtectedTarget" and ei.value.non_retryable


async def test_inject_refuses_engine_wide_protected_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE_CHAOS_PROTECTED_SERVICES", "payments")
    sel = Selector(service="payments", environment="dev")
    action = Action.model_construct(name="k", fault="kill_instance", target=sel, params={})
    target = Target(service="payments", environment="dev", version="v1", index=0)
    with pytest.raises(ApplicationError, match="service 'payments' is protected"):
        await ActivityEnvironment().run(
            mapped(acts(tmp_path).inject), InjectInput(key="k", action=action, target=target)
        )


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/", "https://example.com/", "http://10.0.0.5:8080/x"]
)
async def test_probe_refuses_non_loopback_urls(tmp_path: Path, url: str) -> None:
    probe = HttpProbe.model_construct(
        name="p", url=url, method="GET", headers={}, body=None, requests=1
    )
    with pytest.raises(ApplicationError) as ei:
        await ActivityEnvironment().run(
            mapped(acts(tmp_path).probe), ProbeInput(probe=probe, phase="before")
        )
    assert ei.value.type == "NonLoopbackProbe" and "not loopback" in str(ei.value)


def test_model_refuses_non_loopback_probe() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        HttpProbe(name="p", url="http://8.8.8.8/")

"""A release's starter check, its first step (a continued run was admitted when it
began): with identity on, the starter needs ``deployer`` (action ``release``) on the
service in every environment the pipeline touches, checked and audited one environment
at a time (:mod:`workflows.identity_gate`); the first denial fails the release
(``IdentityDenied``) before any gate runs or any child deployment starts. The child
deployments then run under the release's authority (a child skips its own check).
Identity off: nothing happens and no command is recorded. Deterministic."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import workflows.identity_gate as identity_gate  # the real module: its enforce flag
    from workflows.pipeline_spec import PipelineSpec


def environments(p: PipelineSpec) -> list[str]:
    """Every environment the pipeline deploys to, in stage order, once each."""
    return list(dict.fromkeys(t.environment for stage in p.order() for t in stage.targets))


async def admit_release(token: str | None, p: PipelineSpec, version: str) -> str | None:
    """The verified starter's id (None when identity is off); raises ``IdentityDenied``."""
    guard = identity_gate.IdentityGuard()
    starter: str | None = None
    for n, env in enumerate(environments(p)):
        subject = f"release {p.service}@{version} to {env}"
        if n == 0:
            who = await guard.admit(token, "release", env, p.service, subject)
            if who is None:
                return None  # identity off: nothing more to check
            starter = who.id
            continue
        got = await guard.check(token, "release", env, p.service, subject)
        if got.principal is None or not got.decision.allowed:
            raise identity_gate.denied(got)
    return starter

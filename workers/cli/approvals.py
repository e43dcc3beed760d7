"""Approving a deployment from the caller's side, shared by ``codectl approve`` and
``codectl slo override``: :func:`approve` sends the ``approve`` Update (``override=True``
for an error-budget override) and returns (accepted, message).

Rejected approvals: the Update validator rejects a non-approver before anything is
written to the workflow history (so a stranger cannot make the workflow do work), and
a validator cannot run activities; :func:`approve` therefore records every rejection
in the ledger's hash-chained audit log from the caller's side
(``deployment.approval_rejected`` / ``deployment.override_rejected``)."""

from __future__ import annotations

import asyncio
from typing import Any


def audit_rejection(
    settings: Any, workflow_id: str, actor: str, reason: str, override: bool
) -> None:
    """Append a rejected approval/override to the ledger's audit chain (best effort)."""
    from activities.ledger import Ledger

    action = "deployment.override_rejected" if override else "deployment.approval_rejected"
    Ledger(settings.effective_ledger_url()).audit(
        actor, action, workflow_id, {"reason": reason[:500]}
    )


async def approve(
    client: Any,
    settings: Any,
    workflow_id: str,
    actor: str,
    comment: str = "",
    override: bool = False,
) -> tuple[bool, str]:
    """Send the ``approve`` update; a rejection is audited. Returns (accepted, message)."""
    from temporalio.client import WorkflowUpdateFailedError

    from workers.cli.common import token
    from workflows.models import ApproveInput, ApproveResult

    try:
        res = await client.get_workflow_handle(workflow_id).execute_update(
            "approve",
            ApproveInput(identity=actor, comment=comment, override=override, token=token()),
            result_type=ApproveResult,
        )
    except WorkflowUpdateFailedError as exc:
        reason = str(exc.cause)
        if getattr(exc.cause, "type", None) == "IdentityDenied":
            return False, reason  # decided and audited inside the workflow already
        try:
            await asyncio.to_thread(audit_rejection, settings, workflow_id, actor, reason, override)
        except Exception as audit_exc:  # noqa: BLE001 - the rejection stands; say the audit failed
            reason += f" (could not audit the rejection: {audit_exc})"
        return False, reason
    return True, res.message

"""Scriptable output: the versioned JSON schemas of ``codectl ... --output json``.

Every command that reads state takes ``--output text|json``; with ``json`` it prints
exactly one JSON document on stdout whose ``schema`` names its shape and version.
A version changes only when a field is removed or changes meaning (fields may be
added within a version). The schemas:

| schema | command | fields besides ``schema`` |
|---|---|---|
| ``code.status/v1`` | ``status ID`` | the deployment status fields (``workflow_id``, ``phase``, ``reason``, ``queued_behind``, ...) at top level |
| ``code.history/v1`` | ``history SERVICE`` | ``service``, ``environment`` (or null), ``releases``: [{``when``, ``environment``, ``version``, ``status``, ``actor``, ``strategy``, ``workflow_id``, ``release_id`` (the release that ran it, or null)}] |
| ``code.audit.verify/v1`` | ``audit verify`` | ``ok``, ``records``, ``broken_seq`` (or null), ``ledger`` (masked URL) |
| ``code.chaos.status/v1`` | ``chaos status ID`` | ``workflow_id``, ``journal`` (the chaos journal, or null before it starts) |
| ``code.chaos.report/v1`` | ``chaos report ID`` | ``workflow_id``, ``source`` (store/workflow), ``files`` |
| ``code.soak.status/v1`` | ``soak status ID`` | ``run_id``, ``status`` (the soak status, or null) |
| ``code.artifacts.list/v1`` | ``artifacts list`` | ``prefix``, ``keys`` |
| ``code.artifacts.versions/v1`` | ``artifacts versions KEY`` | ``key``, ``versions``: [{``key``, ``version_id``, ``sha256``, ``size``}] |
| ``code.dev.status/v1`` | ``dev status`` | ``supervisor`` ({``pid``, ``mode``, ...}), ``components``: {name: {``url``, ``state``, ``pid``, ``restarts``, ``last_exit``, ``log``, ...}}, ``clusters``: {name: {``url``, ``pid``, ``alive``, ``supervised``, ``state``, ``restarts``}} |
| ``code.release/v1`` | ``release status ID`` | ``release_id``, ``service``, ``version``, ``phase``, ``stage``, ``wave``, ``gate``, ``cells``: [{``stage``, ``target``, ``wave``, ``environment``, ``cluster``, ``phase``, ``workflow_id``, ``previous_version``, ``weights``, ``reason``}], ``outcome``, ``reason`` |
| ``code.lane/v1`` | ``lanes [SERVICE]`` | a JSON **array** (kept from before schemas), one object per lane, each with its ``schema``: ``lane``, ``workflow_id``, ``service``, ``environment``, ``holder`` ({``workflow_id``, ``kind``, ``description``, ...} or null), ``queue`` (same shape), ``granted_total``; a lane that cannot be read has ``error`` instead |
| ``code.whoami/v1`` | ``whoami`` | ``sub``, ``email``, ``groups``, ``amr``, ``issuer``, ``expires``, ``roles`` ({environment: [role]}) |
| ``code.policy.check/v1`` | ``policy check FILE`` | ``ok``, ``policy`` (the validated document) |
| ``code.audit.list/v1`` | ``audit list`` | ``records``: [{``seq``, ``ts``, ``actor``, ``action``, ``subject``, ``detail``}] |
| ``code.certify/v1`` | ``certify SERVICE`` | ``workflow_id``, ``verdict`` (pass/fail), ``reasons``, ``certificate`` (the ``code.certificate/v1`` document: ``schema_version``, ``categories``, ``rules``, ``suite``, ``diff``, ...), ``artifacts``: [{``name``, ``key``, ``version_id``, ``sha256``, ``size``}] |
| ``code.certify.schedule/v1`` | ``certify schedule SERVICE`` | ``schedule_id``, ``cron``, ``service``, ``environment`` |"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

SCHEMAS = (
    "code.status/v1",
    "code.history/v1",
    "code.audit.verify/v1",
    "code.chaos.status/v1",
    "code.chaos.report/v1",
    "code.soak.status/v1",
    "code.artifacts.list/v1",
    "code.artifacts.versions/v1",
    "code.dev.status/v1",
    "code.lane/v1",
    "code.release/v1",
    "code.whoami/v1",
    "code.policy.check/v1",
    "code.audit.list/v1",
    "code.certify/v1",
    "code.certify.schedule/v1",
)
DEV_STATUS_SCHEMA = "code.dev.status/v1"
LANE_SCHEMA = "code.lane/v1"
OUTPUT_HELP = "text or json (a versioned document: see workers/cli/output.py)"


def check_output(output: str) -> str:
    """``output`` when it is ``text`` or ``json``; else exit 2 saying so."""
    if output not in ("text", "json"):
        typer.echo(f"error: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)
    return output


def emit(schema: str, doc: dict[str, Any]) -> None:
    """Print ``{"schema": schema, **doc}`` as one JSON line on stdout."""
    if schema not in SCHEMAS:
        raise ValueError(f"undocumented output schema {schema!r}")
    sys.stdout.write(json.dumps({"schema": schema, **doc}, default=str) + "\n")
    sys.stdout.flush()

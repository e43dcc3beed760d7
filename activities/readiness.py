"""Evidence-gathering activities of readiness certificates (all the I/O of
:class:`workflows.readiness.ReadinessWorkflow`). Each returns a partial
:class:`~workflows.readiness_models.EvidenceBundle` the workflow merges; none returns a
secret value.

* ``readiness.ledger`` — the audit chain's ``release.*`` records of the service/environment
  in the window (:class:`LedgerEvent`, with their seq for evidence links), the chain verified
  end to end (``Ledger.verify_audit``), and the rust_core manifest policy run over the specs
  the ledger holds for the window; the audited identity decisions about the service and
  whether identity is configured (:mod:`activities.readiness_evidence`).
* ``readiness.artifacts`` — chaos journals (``chaos/<workflow id>/journal.json``, read back
  with their checksum) whose targets include the service/environment and that started in the
  window; the crash-matrix total (``**N/M trials correct**``) of a file, with its SHA-256.
* ``readiness.temporal`` — the service's executions (visibility, ``CodeService``), closed
  soaks targeting it with their results, and the secret scan of those histories: the values
  of the secrets the ledger's specs reference are resolved here, looked for (plain and
  base64) and dropped; only hit *names* leave the activity. Uses the worker's client
  (``activity.client()``, with the worker's codec).
* ``readiness.observability`` — the SLOs of ``rules.slo_files`` for the service and whether
  their generated rule groups are loaded in Prometheus (``/api/v1/rules``); each SLO's
  availability over the window from Prometheus (:func:`~activities.readiness_evidence.availability`).
* ``readiness.previous`` / ``readiness.publish`` — the latest certificate of the
  service/environment (``readiness/<service>/<env>/latest.json``), and storing
  ``certificate.json``/``.md``/``.html`` under ``readiness/<service>/<env>/<workflow id>/``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.readiness_evidence import availability, identity_decisions
from activities.settings import Settings
from code_foundation.names import ReadyA
from workflows.readiness_models import (
    ChaosRun,
    CrashMatrix,
    Evidence,
    EvidenceBundle,
    GatherInput,
    LedgerEvent,
    ObservabilityFacts,
    PreviousInput,
    PreviousResult,
    PublishedArtifact,
    PublishInput,
    PublishResult,
    SecurityFacts,
    SloFacts,
)

_TOTAL = re.compile(r"\*\*(\d+)/(\d+) trials correct\*\*")


def crash_matrix(path: str | None) -> CrashMatrix | None:
    """The last ``**N/M trials correct**`` line of a crash-matrix report, or None."""
    from activities.artifacts import sha256_hex

    if not path or not Path(path).is_file():
        return None
    data = Path(path).read_bytes()
    found = _TOTAL.findall(data.decode(errors="replace"))
    if not found:
        return None
    ok, total = (int(x) for x in found[-1])
    return CrashMatrix(
        correct=ok, total=total, evidence=Evidence(kind="file", ref=path, sha256=sha256_hex(data))
    )


class ReadinessActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _bundle(self, inp: GatherInput, **kw: Any) -> EvidenceBundle:
        s = self.settings
        ui = f"{s.temporal_ui_url}/namespaces/{s.temporal_namespace}/workflows/"
        return EvidenceBundle(
            service=inp.service,
            environment=inp.environment,
            window_start=inp.window_start,
            window_end=inp.window_end,
            ui_base=ui,
            **kw,
        )

    def _ledger(self) -> Any:
        from activities.ledger import Ledger

        return Ledger(self.settings.effective_ledger_url())

    # ------------------------------------------------------------ ledger
    def _read_ledger(self, inp: GatherInput) -> EvidenceBundle:
        ledger = self._ledger()
        try:
            prefix = f"{inp.service}/{inp.environment}@"
            records = ledger.audit_records()
            events = []
            for r in records:
                ts = r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC)
                if not (r.action.startswith("release.") and r.subject.startswith(prefix)):
                    continue
                if not (inp.window_start <= ts <= inp.window_end):
                    continue
                d = json.loads(r.detail_json or "{}")
                events.append(
                    LedgerEvent(
                        seq=r.seq,
                        ts=ts,
                        status=r.action.removeprefix("release."),
                        version=r.subject.removeprefix(prefix),
                        workflow_id=str(d.get("workflow_id", "")),
                        strategy=str(d.get("strategy", "")),
                        detail=str(d.get("detail", ""))[:500],
                    )
                )
            broken = ledger.verify_audit()
            checked, violations = self._policy(ledger, inp)
            sec = SecurityFacts(
                audit_records=len(records),
                audit_broken_at=broken,
                audit_head_hash=records[-1].hash if records else "",
                policy_checked=checked,
                policy_violations=violations,
                identity_enabled=self._identity_on(),
                identity_decisions=identity_decisions(
                    records, inp.service, inp.environment, inp.window_start, inp.window_end
                ),
            )
            return self._bundle(inp, ledger=events, security=sec)
        finally:
            ledger.close()

    def _identity_on(self) -> bool | None:
        from activities.identity import IdentitySource
        from code_foundation.errors import ConfigError

        try:
            return IdentitySource(self.settings).configured
        except ConfigError:
            return None  # half configured: the worker refuses to start; not known here

    def _policy(self, ledger: Any, inp: GatherInput) -> tuple[list[str], list[str]]:
        """rust_core's manifest policy over the Kubernetes specs of the window."""
        from workflows.spec import DeploymentSpec

        checked, problems = [], []
        for rel in ledger.history(inp.service, inp.environment, limit=500):
            if not rel.spec_json:
                continue
            spec = DeploymentSpec.model_validate_json(rel.spec_json)
            if spec.platform != "kubernetes":
                continue
            try:
                import rust_core
                from activities.platform.kubernetes import render_manifests

                text = render_manifests(spec)
                found = rust_core.validate_manifests(text, required_labels=list(spec.labels))
            except ImportError:
                continue
            checked.append(spec.version)
            problems += [
                f"{spec.version}: {v.rule_id} {v.kind}/{v.name}: {v.message}" for v in found
            ]
        return checked, problems

    @activity.defn(name=ReadyA.LEDGER)
    async def ledger(self, inp: GatherInput) -> EvidenceBundle:
        return await asyncio.to_thread(self._read_ledger, inp)

    # ------------------------------------------------------------ artifacts
    def _read_artifacts(self, inp: GatherInput) -> EvidenceBundle:
        from activities.artifacts import store_from_settings
        from chaos.messages import Journal

        store = store_from_settings(self.settings)
        runs = []
        for key in store.list("chaos/"):
            if not key.endswith("/journal.json") or key.count("/") != 2:
                continue  # chaos/<workflow id>/journal.json (not the CTK-format copy)
            ref = store.versions(key)[-1]
            j = Journal.model_validate_json(store.get(key, ref.version_id))
            hit = any(
                t.service == inp.service and t.environment == inp.environment
                for ts in j.targets.values()
                for t in ts
            )
            if not hit or not (inp.window_start <= j.started_at <= inp.window_end):
                continue
            runs.append(
                ChaosRun(
                    workflow_id=j.workflow_id,
                    title=j.title,
                    status=j.status,
                    deviated=j.deviated,
                    reason=j.reason,
                    started_at=j.started_at,
                    finished_at=j.finished_at,
                    faults=len(j.faults),
                    rollbacks=len(j.rollbacks),
                    rollback_failed=j.rollback_failed,
                    journal=Evidence(
                        kind="artifact", ref=key, version_id=ref.version_id, sha256=ref.sha256
                    ),
                )
            )
        return self._bundle(inp, chaos=runs, crash_matrix=crash_matrix(inp.crash_matrix))

    @activity.defn(name=ReadyA.ARTIFACTS)
    async def artifacts(self, inp: GatherInput) -> EvidenceBundle:
        return await asyncio.to_thread(self._read_artifacts, inp)

    # ------------------------------------------------------------ temporal
    def _secret_values(self, inp: GatherInput) -> tuple[dict[str, str], str]:
        from activities.secrets import SecretResolver
        from workflows.spec import DeploymentSpec

        ledger = self._ledger()
        try:
            refs: dict[str, str] = {}
            for rel in ledger.history(inp.service, inp.environment, limit=500):
                if rel.spec_json:
                    spec = DeploymentSpec.model_validate_json(rel.spec_json)
                    refs |= {f"{spec.version}:{k}": v for k, v in spec.artifact.secrets.items()}
        finally:
            ledger.close()
        if not refs:
            return {}, ""
        try:
            values, _versions = SecretResolver.from_settings(self.settings).resolve(refs)
        except Exception as exc:  # noqa: BLE001 - reported as "not measured", never guessed
            return {}, f"secrets could not be resolved for the scan: {type(exc).__name__}"
        return values, ""

    @activity.defn(name=ReadyA.TEMPORAL)
    async def temporal(self, inp: GatherInput) -> EvidenceBundle:
        from temporalio.service import RPCError, RPCStatusCode

        from activities.readiness_scan import list_runs, needles, scan_history, soak_runs

        client = activity.client()
        base = self._bundle(inp).ui_base
        try:
            runs = await list_runs(client, inp.service, inp.window_start, inp.window_end, base)
            soaks, soak_ids = await soak_runs(
                client, inp.service, inp.environment, inp.window_start, inp.window_end, base
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            # a server without visibility (the time-skipping test server): not measured
            note = f"Temporal visibility unavailable: {exc.message}"
            return self._bundle(inp, security=SecurityFacts(scan_note=note))
        values, why = await asyncio.to_thread(self._secret_values, inp)
        wanted = needles(values)
        del values
        ids = [r.workflow_id for r in runs if r.workflow_id not in inp.exclude_workflow_ids]
        ids = list(dict.fromkeys(ids + soak_ids))
        hits: list[str] = []
        payloads = encrypted = 0
        for i, wid in enumerate(ids):
            activity.heartbeat(i)
            h, p, e = await scan_history(client, wid, wanted)
            hits, payloads, encrypted = hits + h, payloads + p, encrypted + e
        s = self.settings
        sec = SecurityFacts(
            histories_scanned=ids,
            secrets_checked=len(wanted),
            scan_note=why,
            secret_hits=hits,
            payloads=payloads,
            payloads_encrypted=encrypted,
            encryption_configured=bool(s.codec_keyring or s.codec_vault_path),
            temporal_tls=s.temporal_tls,
            temporal_mtls=bool(s.temporal_tls and s.temporal_tls_cert),
        )
        return self._bundle(inp, runs=runs, soaks=soaks, security=sec)

    # ------------------------------------------------------------ observability
    @activity.defn(name=ReadyA.OBSERVABILITY)
    async def observability(self, inp: GatherInput) -> EvidenceBundle:
        import httpx

        from activities.artifacts import sha256_hex
        from code_foundation.loader import read_text
        from workflows.slo import parse_slos, prometheus_rules

        slos: list[SloFacts] = []
        for path in inp.rules.slo_files:
            text = read_text(Path(path))
            for slo in parse_slos(text, path):
                if slo.spec.service != inp.service:
                    continue
                groups = prometheus_rules([slo])["groups"]
                expected = [
                    f"{g['name']}/{r.get('alert') or r.get('record')}#{i}"
                    for g in groups
                    for i, r in enumerate(g["rules"])
                ]
                slos.append(
                    SloFacts(
                        name=slo.name,
                        objective=slo.target,
                        window_seconds=slo.window_seconds,
                        good_query=slo.good_query(),
                        total_query=slo.total_query(),
                        source=path,
                        sha256=sha256_hex(text.encode()),
                        rules_expected=expected,
                    )
                )
        obs = ObservabilityFacts(prometheus=self.settings.prometheus_url, slos=slos)
        for s in slos:
            await availability(self.settings, s, inp.window_start, inp.window_end)
        if obs.prometheus and slos:
            try:
                async with httpx.AsyncClient(timeout=10.0) as c:
                    r = await c.get(obs.prometheus.rstrip("/") + "/api/v1/rules")
                    r.raise_for_status()
                    loaded = {
                        f"{g['name']}/{rule.get('name')}#{i}"
                        for g in r.json()["data"]["groups"]
                        for i, rule in enumerate(g.get("rules", []))
                    }
                for s in slos:
                    s.rules_loaded = [x for x in s.rules_expected if x in loaded]
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                obs.prometheus_error = f"Prometheus rules unreadable: {type(exc).__name__}: {exc}"
        return self._bundle(inp, observability=obs)

    # ------------------------------------------------------------ certificates
    def _prefix(self, service: str, environment: str) -> str:
        return f"readiness/{service}/{environment}"

    @activity.defn(name=ReadyA.PREVIOUS)
    async def previous(self, inp: PreviousInput) -> PreviousResult:
        from activities.artifacts import ArtifactNotFound, store_from_settings
        from workflows.readiness_models import Certificate

        def read() -> PreviousResult:
            store = store_from_settings(self.settings)
            try:
                data = store.get(f"{self._prefix(inp.service, inp.environment)}/latest.json")
            except ArtifactNotFound:
                return PreviousResult()
            return PreviousResult(certificate=Certificate.model_validate_json(data))

        return await asyncio.to_thread(read)

    @activity.defn(name=ReadyA.PUBLISH)
    async def publish(self, inp: PublishInput) -> PublishResult:
        from activities.artifacts import store_from_settings
        from workflows.readiness_report import render_html, render_json, render_markdown

        cert = inp.certificate
        files = {
            "certificate.json": (render_json(cert), "application/json"),
            "certificate.md": (render_markdown(cert), "text/markdown; charset=utf-8"),
            "certificate.html": (render_html(cert, inp.bundle), "text/html; charset=utf-8"),
        }

        def put() -> PublishResult:
            store = store_from_settings(self.settings)
            prefix = self._prefix(cert.service, cert.environment)
            out = []
            for name, (text, ctype) in files.items():
                ref = store.put(f"{prefix}/{cert.workflow_id}/{name}", text.encode(), ctype)
                out.append(PublishedArtifact(name=name, **ref.model_dump()))
            store.put(
                f"{prefix}/latest.json", files["certificate.json"][0].encode(), "application/json"
            )
            return PublishResult(artifacts=out)

        return await asyncio.to_thread(put)


def readiness_activities(settings: Settings) -> list[Callable[..., Any]]:
    a = ReadinessActivities(settings)
    return [a.ledger, a.artifacts, a.temporal, a.observability, a.previous, a.publish]

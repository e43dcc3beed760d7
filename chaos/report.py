"""Render a chaos journal as a readable Markdown report (timeline, targets,
probes with the fault window's tally, faults, rollbacks, deviation). Pure."""

from __future__ import annotations

from chaos.messages import Journal


def _t(dt: object) -> str:
    return dt.strftime("%H:%M:%S.%f")[:-3] if dt is not None else "-"  # type: ignore[attr-defined]


def render_markdown(j: Journal) -> str:
    d = j.during
    lines = [
        f"# Chaos experiment: {j.title}",
        "",
        f"- workflow: `{j.workflow_id}`",
        f"- status: **{j.status}**",
        f"- deviated: **{'yes' if j.deviated else 'no'}**",
        f"- reason: {j.reason or '-'}",
        f"- actor: {j.actor}" + (f"; aborted by {j.aborted_by}" if j.aborted_by else ""),
        f"- seed: {j.seed}",
        f"- started: {j.started_at.isoformat()}; finished: "
        + (j.finished_at.isoformat() if j.finished_at else "-"),
        f"- rollbacks: {'FAILED' if j.rollback_failed else 'ok'}",
        "",
        "## Targets",
        "",
    ]
    for action, targets in j.targets.items():
        lines.append(f"- {action}: " + (", ".join(t.id for t in targets) or "(none)"))
    lines += [
        "",
        "## Faults",
        "",
        "| action | fault | target | injected | reverted | error |",
        "|---|---|---|---|---|---|",
    ]
    for f in j.faults:
        err = f.inject_error or f.revert_error or ""
        lines.append(
            f"| {f.action} | {f.fault} | {f.target.id} | {_t(f.injected_at)} | {_t(f.reverted_at)} | {err} |"
        )
    lines += [
        "",
        "## Probes",
        "",
        f"- fault window: {d.rounds} rounds, {d.probes} probes ({d.requests} requests,"
        f" {d.failures} failed), {d.out_of_tolerance} out of tolerance",
        "",
        "| time | phase | probe | ok | detail |",
        "|---|---|---|---|---|",
    ]
    for p in j.probes:
        lines.append(
            f"| {_t(p.started_at)} | {p.phase} | {p.name} | {'yes' if p.ok else '**NO**'} | {p.detail} |"
        )
    lines += ["", "## Timeline", ""]
    for e in sorted(j.events + j.rollbacks, key=lambda e: e.at):
        lines.append(f"- {_t(e.at)} [{e.kind}] {e.message}")
    return "\n".join(lines) + "\n"

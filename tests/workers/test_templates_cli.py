"""Analysis templates resolved by ``codectl validate`` (a real process) and by the spec
loader that ``codectl deploy`` uses: a template with typed args (defaults, overrides)
resolves to exactly the inline analysis (so the run records the resolved analysis and a
rejudge of it is the rejudge of an inline spec); a missing arg, an unknown arg, a
wrongly typed arg and a missing template exit 2 naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.cli.common import load_spec_file
from workflows.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "examples" / "analysis-templates"
EXAMPLE = ROOT / "deploy" / "examples" / "hooks" / "canary-with-templates.yaml"


def codectl(*args: str, folder: Path | None = TEMPLATES) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CODE_ANALYSIS_TEMPLATES_DIR"}
    if folder is not None:
        env["CODE_ANALYSIS_TEMPLATES_DIR"] = str(folder)
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def write(tmp: Path, analysis: str) -> Path:
    text = EXAMPLE.read_text().replace(
        "      - analysis: {template: error-rate}\n", f"      - analysis: {analysis}\n"
    )
    text = text.replace("workdir: ..", f"workdir: {EXAMPLE.parent.parent}")
    p = tmp / "spec.yaml"
    p.write_text(text)
    return p


def test_the_example_resolves_to_the_inline_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODE_ANALYSIS_TEMPLATES_DIR", str(TEMPLATES))
    p = codectl("validate", str(EXAMPLE))
    assert p.returncode == 0 and "valid" in p.stdout, p.stderr
    spec = load_spec_file(EXAMPLE)
    canary = spec.strategy.canary
    assert canary is not None and canary.analysis is not None
    steps = canary.steps
    a1, a3 = steps[1].analysis, steps[3].analysis
    assert a1 is not None and a3 is not None
    # defaults: max_error_rate 0.05, min_requests 10; overrides: args and a key beside them
    assert (a1.thresholds.max_error_rate, a1.thresholds.min_requests, a1.count) == (0.05, 10, 2)
    assert (a3.thresholds.min_requests, a3.count) == (20, 3)
    assert canary.analysis.start_at_step == 1 and canary.analysis.thresholds.max_error_rate == 0.02
    inline = EXAMPLE.read_text()
    inline = inline.replace(
        "{template: error-rate, args: {max_error_rate: 0.02}, start_at_step: 1}",
        "{interval: 5s, count: 2, start_at_step: 1, thresholds: {max_error_rate: 0.02, "
        "max_error_rate_increase: 0.02, min_requests: 10}}",
    )
    inline = inline.replace(
        "{template: error-rate}",
        "{interval: 5s, count: 2, thresholds: {max_error_rate: 0.05, "
        "max_error_rate_increase: 0.02, min_requests: 10}}",
    )
    inline = inline.replace(
        "{template: error-rate, args: {min_requests: 20}, count: 3}",
        "{interval: 5s, count: 3, thresholds: {max_error_rate: 0.05, "
        "max_error_rate_increase: 0.02, min_requests: 20}}",
    )
    expected = parse_spec(inline)
    assert spec.strategy == expected.strategy  # what the run records: no template left


def test_a_typed_prometheus_template_resolves(tmp_path: Path) -> None:
    p = write(tmp_path, "{template: http-latency, args: {route: /api, count: 4}}")
    r = codectl("validate", str(p))
    assert r.returncode == 0, r.stderr
    os.environ["CODE_ANALYSIS_TEMPLATES_DIR"] = str(TEMPLATES)
    try:
        a = load_spec_file(p).strategy.canary.steps[1].analysis  # type: ignore[union-attr]
    finally:
        del os.environ["CODE_ANALYSIS_TEMPLATES_DIR"]
    assert a is not None and a.count == 4 and a.interval.total_seconds() == 30
    assert 'route="/api"' in (a.metrics[0].query or "") and "{version}" in (
        a.metrics[0].query or ""
    )


@pytest.mark.parametrize(
    ("analysis", "named"),
    [
        ("{template: http-latency}", "strategy.canary.steps[1].analysis.args.route: missing"),
        (
            "{template: http-latency, args: {route: /a, colour: red}}",
            "args.colour: template 'http-latency' has no arg 'colour'",
        ),
        (
            "{template: http-latency, args: {route: /a, count: many}}",
            "args.count: must be of type integer (got 'many')",
        ),
        (
            "{template: nope}",
            "no analysis template named 'nope' (known: error-rate, http-latency)",
        ),
    ],
)
def test_a_bad_reference_exits_2_naming_it(tmp_path: Path, analysis: str, named: str) -> None:
    r = codectl("validate", str(write(tmp_path, analysis)))
    assert r.returncode == 2, r.stdout + r.stderr
    assert named in " ".join(r.stderr.split()), r.stderr


def test_the_hooks_example_is_valid() -> None:
    r = codectl("validate", str(EXAMPLE.parent / "canary-with-hooks.yaml"), folder=None)
    assert r.returncode == 0, r.stderr


def test_templates_without_the_setting_or_with_a_bad_template(tmp_path: Path) -> None:
    r = codectl("validate", str(EXAMPLE), folder=None)
    assert r.returncode == 2 and "analysis_templates_dir" in r.stderr
    bad = tmp_path / "tpl"
    bad.mkdir()
    (bad / "t.yaml").write_text("name: t\nanalysis: {interval: '{{args.x}}'}\n")
    spec = write(tmp_path, "{template: t}")
    r = codectl("validate", str(spec), folder=bad)
    assert r.returncode == 2 and "{{args.x}} is not a declared arg" in " ".join(r.stderr.split())

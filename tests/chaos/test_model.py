"""Experiment model, tolerances, loopback rule, blast radius, Chaos Toolkit import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.blast import Target, count_for_mode, merge_protected, select_targets
from chaos.model import Protected, Selector, load_experiment, parse_experiment
from chaos.tolerance import (
    JsonPathTolerance,
    Observation,
    RangeTolerance,
    RegexTolerance,
    SloTolerance,
    StatusTolerance,
    evaluate,
)
from code_foundation.errors import SpecError
from code_foundation.targets import loopback_problem

CTK = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "experiments" / "ctk"
NATIVE = CTK.parent
ENV: dict[str, str] = {}  # no engine-wide overrides: default protected environments apply


def doc(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "title": "t",
        "configuration": {"url": "http://127.0.0.1:8080"},
        "steady_state": {"probes": [{"name": "up", "url": "${url}/work"}]},
        "method": [
            {
                "action": {
                    "name": "k",
                    "fault": "kill_instance",
                    "target": {"service": "demo", "environment": "dev"},
                }
            }
        ],
    }
    d.update(over)
    return d


# ------------------------------------------------------------------ model
def test_configuration_is_substituted_and_defaults_apply() -> None:
    e = parse_experiment(doc(), environ=ENV)
    assert (
        e.steady_state is not None and e.steady_state.probes[0].url == "http://127.0.0.1:8080/work"
    )
    assert e.controls.duration.total_seconds() == 30
    assert e.protected.environments == ["prod", "production"]


def test_every_bad_field_is_named() -> None:
    bad = doc(
        steady_state={"probes": [{"name": "up", "url": "http://10.1.2.3/"}]},
        method=[
            {
                "action": {
                    "name": "k",
                    "fault": "explode",
                    "target": {"service": "demo", "environment": "dev"},
                }
            },
            {
                "action": {
                    "name": "j",
                    "fault": "kill_instance",
                    "target": {"service": "Demo!", "environment": "dev", "mode": "half"},
                }
            },
            {"pause": "soon"},
        ],
        controls={"probe_interval": "0s", "colour": "red"},
    )
    with pytest.raises(SpecError) as ei:
        parse_experiment(bad, "exp.yaml", environ=ENV)
    text = "\n".join(ei.value.problems)
    assert "steady_state.probes[0].url" in text and "not loopback" in text
    assert "method[0].action" in text and "unknown fault kind 'explode'" in text
    assert "method[1].action.target.service" in text
    assert "method[1].action.target.mode" in text
    assert "method[2].pause" in text
    assert "controls.colour" in text


def test_fault_params_are_checked() -> None:
    d = doc(
        method=[
            {
                "action": {
                    "name": "l",
                    "fault": "latency",
                    "params": {"fraction": 2, "colour": 1},
                    "target": {"service": "demo", "environment": "dev"},
                }
            }
        ]
    )
    with pytest.raises(SpecError) as ei:
        parse_experiment(d, environ=ENV)
    text = str(ei.value)
    assert (
        "needs parameter 'latency_ms'" in text
        and "no parameter 'colour'" in text
        and "fraction" in text
    )


def _partition(**params: Any) -> dict[str, Any]:
    return doc(
        method=[
            {
                "action": {
                    "name": "cut",
                    "fault": "network_partition",
                    "params": params,
                    "target": {"platform": "kubernetes", "service": "demo", "environment": "dev"},
                }
            }
        ]
    )


def test_network_partition_direction_is_checked() -> None:
    for ok in ({}, {"direction": "ingress"}, {"direction": "egress"}, {"direction": "both"}):
        assert parse_experiment(_partition(**ok), environ=ENV).actions()[0].params == ok
    with pytest.raises(SpecError) as ei:
        parse_experiment(_partition(direction="sideways"), environ=ENV)
    assert "parameter 'direction' must be one of ingress, egress, both, got 'sideways'" in str(
        ei.value
    )
    with pytest.raises(SpecError, match="parameter 'direction' has the wrong type"):
        parse_experiment(_partition(direction=1), environ=ENV)
    local = _partition()
    local["method"][0]["action"]["target"]["platform"] = "local"
    with pytest.raises(SpecError, match="is a kubernetes fault but the target platform is 'local'"):
        parse_experiment(local, environ=ENV)


def test_unknown_configuration_reference_is_refused() -> None:
    with pytest.raises(SpecError, match=r"\$\{nope\} is not in configuration"):
        parse_experiment(
            doc(steady_state={"probes": [{"name": "x", "url": "${nope}/"}]}), environ=ENV
        )


def test_protected_service_and_environment_are_refused() -> None:
    with pytest.raises(SpecError, match="service 'demo' is protected"):
        parse_experiment(doc(protected={"services": ["demo"]}), environ=ENV)
    with pytest.raises(SpecError, match="environment 'dev' is protected"):
        parse_experiment(doc(), environ={"CODE_CHAOS_PROTECTED_ENVIRONMENTS": "dev"})
    # an empty engine-wide list lifts the default production protection
    d = doc(
        method=[
            {
                "action": {
                    "name": "k",
                    "fault": "kill_instance",
                    "target": {"service": "demo", "environment": "production"},
                }
            }
        ]
    )
    with pytest.raises(SpecError, match="environment 'production' is protected"):
        parse_experiment(d, environ=ENV)
    assert parse_experiment(d, environ={"CODE_CHAOS_PROTECTED_ENVIRONMENTS": ""}).title == "t"


# ------------------------------------------------------------------ loopback
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://127.9.9.9/",
        "http://[::1]:80/",
        "https://localhost/",
        "http://LOCALHOST:1/",
    ],
)
def test_loopback_urls_are_allowed(url: str) -> None:
    assert loopback_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "https://example.com/",
        "http://127.0.0.1.nip.io/",
        "http://[::2]/",
        "ftp://127.0.0.1/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
    ],
)
def test_non_loopback_urls_are_refused(url: str) -> None:
    assert loopback_problem(url) is not None


# ------------------------------------------------------------------ tolerances
def test_tolerances() -> None:
    ok = Observation(status=200, body='{"version": "v1", "n": 3}', latency_ms=12, requests=1)
    assert evaluate(StatusTolerance(status=200), ok)[0]
    assert not evaluate(StatusTolerance(status=[201, 204]), ok)[0]
    assert evaluate(RangeTolerance(range=(0, 50), target="latency_ms"), ok)[0]
    assert not evaluate(RangeTolerance(range=(500, 599)), ok)[0]
    assert evaluate(RegexTolerance(pattern=r'"v\d"'), ok)[0]
    assert evaluate(JsonPathTolerance(path="$.version", expect="v1"), ok)[0]
    assert not evaluate(JsonPathTolerance(path="$.version", expect="v2"), ok)[0]
    assert evaluate(JsonPathTolerance(path="$.n"), ok)[0]
    assert not evaluate(StatusTolerance(), Observation(error="ConnectError", requests=1))[0]
    slo = SloTolerance(objective=0.99, max_burn_rate=10)
    assert evaluate(slo, Observation(requests=100, failures=5))[0]  # burn 5
    ok_, detail = evaluate(slo, Observation(requests=100, failures=20))  # burn 20
    assert not ok_ and "burn rate 20.00" in detail


@given(
    rounds=st.lists(st.tuples(st.integers(0, 20), st.integers(1, 20)), min_size=1, max_size=12),
    factor=st.floats(0.5, 50),
)
def test_window_burn_rust_core_matches_python(rounds: list[tuple[int, int]], factor: float) -> None:
    import chaos.tolerance as tol

    stamps = [float(i * 5) for i in range(len(rounds))]
    bad = [float(min(b, n)) for b, n in rounds]
    total = [float(n) for _, n in rounds]
    good = [t - b for t, b in zip(total, bad, strict=True)]
    args = (stamps, good, total, 0.99, factor, 15.0, 5.0, stamps[-1])
    native = tol.window_burn(*args)
    from rust_core import reference  # the pure-Python twin (rust_core is always built)

    w = reference.burn_rates(
        stamps, good, total, 0.99, windows=[(15.0, 5.0, factor, "chaos")], now=stamps[-1]
    ).windows[0]
    python = (w.long_burn_rate, w.short_burn_rate, w.firing)
    assert native[3] == "rust_core.burn_rates"
    assert native[0] == pytest.approx(python[0]) and native[1] == pytest.approx(python[1])
    if abs(native[0] - factor) > 1e-6 and abs(native[1] - factor) > 1e-6:
        assert native[2] == python[2]


# ------------------------------------------------------------------ blast radius
def cands(n: int, versions: tuple[str, ...] = ("v1",)) -> list[Target]:
    return [
        Target(service="demo", environment="dev", version=v, index=i)
        for v in versions
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("one", 1),
        ("all", 10),
        ("fixed(3)", 3),
        ("fixed(30)", 10),
        ("percent(25)", 3),
        ("percent(1)", 1),
    ],
)
def test_modes(mode: str, expected: int) -> None:
    sel = Selector(service="demo", environment="dev", mode=mode)
    assert len(select_targets("instance", sel, cands(10), 0, "a")) == expected


def test_selectors_filter_version_and_labels() -> None:
    pool = cands(3, ("v1", "v2"))
    pool[4].labels["zone"] = "b"
    sel = Selector(
        service="demo", environment="dev", version="v2", labels={"zone": "b"}, mode="all"
    )
    assert [t.id for t in select_targets("instance", sel, pool, 0, "a")] == ["local:demo/dev/v2#1"]
    other = Selector(service="other", environment="dev", mode="all")
    assert select_targets("instance", other, pool, 0, "a") == []


@given(seed=st.integers(0, 2**32), n=st.integers(1, 30), k=st.integers(1, 30))
def test_selection_is_deterministic_and_order_independent(seed: int, n: int, k: int) -> None:
    sel = Selector(service="demo", environment="dev", mode=f"fixed({k})")
    pool = cands(n)
    a = select_targets("instance", sel, pool, seed, "kill")
    b = select_targets("instance", sel, list(reversed(pool)), seed, "kill")
    assert a == b and len(a) == min(k, n)
    assert count_for_mode("percent", 50, n) == max(1, -(-n // 2))


def test_merge_protected_from_environment() -> None:
    got = merge_protected(
        Protected(services=["a"]),
        {"CODE_CHAOS_PROTECTED_SERVICES": "b, c", "CODE_CHAOS_PROTECTED_ENVIRONMENTS": "live"},
    )
    assert got == {"services": ["a", "b", "c"], "environments": ["live"]}


# ------------------------------------------------------------------ example files
def test_native_examples_load() -> None:
    for p in sorted(NATIVE.glob("*.yaml")):
        assert load_experiment(p, environ=ENV).title


def test_k8s_network_partition_example_parses() -> None:
    exp = load_experiment(NATIVE / "k8s-network-partition.yaml", environ=ENV)
    [action] = exp.actions()
    assert action.fault == "network_partition" and action.params == {"direction": "ingress"}
    assert action.target.platform == "kubernetes" and action.target.version == "v2"
    assert [(r.action, r.target.platform) for r in exp.rollbacks] == [
        ("remove_faults", "kubernetes")
    ]


IMPORTED = {
    "01-kill-stable-instance.json": ["kill_instance", "probe"],
    "02-latency-range-tolerance.yaml": ["latency"],
    "03-error-injection-jsonpath.json": ["error", "probe"],
    "04-drop-dependency-regex.yaml": ["drop_dependency"],
    "05-k8s-delete-pod.json": ["delete_pod"],
    "12-chaosk8s-terminate-pods.json": ["delete_pod"],
    "13-chaosk8s-scale-deployment.yaml": ["scale_down", "probe"],
}
REFUSED = {
    "06-refused-process-provider.json": [
        "$.method[0].provider.type: process providers are not supported"
    ],
    "07-refused-unknown-module.json": [
        "$.method[0].provider.module: python module 'chaosk8s.node.actions' is not in CODE's fault catalogue"
    ],
    "08-refused-remote-url.json": [
        "$.steady-state-hypothesis.probes[0].provider.url: 'https://httpbin.org/forms/post': host 'httpbin.org' is not loopback"
    ],
    "09-refused-python-providers.json": [
        "$.steady-state-hypothesis.probes[0].provider.type: only http probes are supported",
        "$.method[0].provider.module: python module 'os.path' is not in CODE's fault catalogue",
    ],
    "10-refused-controls-and-background.json": [
        "$.controls[0].provider.module: Chaos Toolkit controls are python extensions",
        "$.method[0].background: background activities are not supported",
    ],
    "11-refused-protected-environment.json": [
        "method[0] (kill-prod): environment 'production' is protected"
    ],
    "14-refused-chaosk8s-arguments.json": [
        "$.controls[0].provider.module: Chaos Toolkit controls are python extensions",
        "$.method[0].provider.arguments.name_pattern: name_pattern is not supported",
        "$.method[0].provider.arguments.grace_period: CODE deletes pods with grace period 0",
        "$.method[1].provider.func: chaosk8s.pod.probes.count_pods is not supported",
    ],
}


def test_ten_plus_ctk_files_are_all_covered() -> None:
    assert sorted(p.name for p in CTK.iterdir()) == sorted(IMPORTED | REFUSED)
    assert len(IMPORTED) + len(REFUSED) >= 10


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_ctk_imports(name: str) -> None:
    e = load_experiment(CTK / name, environ=ENV)
    kinds = [s.action.fault if s.action else "probe" if s.probe else "pause" for s in e.method]
    assert kinds == IMPORTED[name]


def test_ctk_mapping_details() -> None:
    e = load_experiment(
        CTK / "01-kill-stable-instance.json",
        environ=ENV,
        endpoints=lambda s, e: "http://127.0.0.1:5555",
    )
    assert e.tags == ["local", "instance", "kill"] and e.seed == 7
    assert e.steady_state is not None
    probe = e.steady_state.probes[0]
    assert probe.url == "http://127.0.0.1:5555/work" and probe.timeout.total_seconds() == 3
    assert probe.tolerance.type == "status" and probe.tolerance.status == 200
    action = e.method[0].action
    assert (
        action is not None
        and action.target.version is None  # whatever version runs
        and action.pauses.after.total_seconds() == 2
    )
    assert (
        e.method[1].probe is not None and e.method[1].probe.name == "demo-must-answer"
    )  # ref resolved
    assert e.rollbacks[0].action == "restore" and e.controls.duration.total_seconds() == 20
    lat = load_experiment(CTK / "02-latency-range-tolerance.yaml", environ=ENV)
    assert lat.actions()[0].params == {"latency_ms": 300, "fraction": 0.5, "route_prefix": "/work"}
    assert lat.steady_state is not None and lat.steady_state.probes[0].tolerance.type == "range"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_ctk_refusals_are_precise(name: str) -> None:
    with pytest.raises(SpecError) as ei:
        load_experiment(CTK / name, environ=ENV)
    for expected in REFUSED[name]:
        assert any(p.startswith(expected) or expected in p for p in ei.value.problems), (
            ei.value.problems
        )
    assert len(ei.value.problems) == len(REFUSED[name]), ei.value.problems


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_experiment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_experiment(bad)

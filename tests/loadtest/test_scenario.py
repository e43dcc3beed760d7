"""Scenario parsing, loopback safety, arrival schedules and weights (pure)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from code_foundation.errors import SpecError
from code_foundation.targets import loopback_problem
from loadtest.safety import NotLoopbackError, require_loopback
from loadtest.scenario import LoadProfile, load_scenario, make_profile, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "scenarios"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.1.2.3/",
        "http://localhost:1",
        "http://[::1]:9/x",
        "https://127.0.0.1/",
    ],
)
def test_loopback_accepted(url: str) -> None:
    assert loopback_problem(url) is None
    assert require_loopback(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:80",
        "http://8.8.8.8/",
        "http://example.com/",
        "http://127.0.0.1.nip.io/",
        "https://10.0.0.1/",
        "http://[2001:db8::1]/",
        "http://0.0.0.0:80/",
    ],
)
def test_non_loopback_refused(url: str) -> None:
    with pytest.raises(NotLoopbackError) as err:
        require_loopback(url)
    assert url in str(err.value)


def test_examples_parse() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        sc = load_scenario(path)
        assert sc.targets and sc.load is not None


def test_bad_scenario_names_every_field() -> None:
    text = """
base_url: http://192.168.1.10:80
timeout: 0s
targets:
  - {name: a, method: FETCH, path: nope, weight: 0, expect_status: 700}
  - {name: b, body: x, json: {}}
  - {name: c, colour: red}
"""
    with pytest.raises(SpecError) as err:
        parse_scenario(text, "bad.yaml")
    probs = "\n".join(err.value.problems)
    for needle in (
        "base_url",
        "targets.0.method",
        "targets.0.path",
        "targets.0.weight",
        "targets.0.expect_status",
        "targets.1",
        "targets.2.colour",
    ):
        assert needle in probs, (needle, probs)
    assert "bad.yaml" in str(err.value)


def test_malformed_and_missing() -> None:
    with pytest.raises(SpecError, match="malformed YAML"):
        parse_scenario("targets: [", "x")
    with pytest.raises(SpecError, match="targets"):
        parse_scenario("name: x", "x")
    with pytest.raises(SpecError, match="cannot read"):
        load_scenario("/nonexistent/scenario.yaml")


def test_duplicate_targets_refused() -> None:
    with pytest.raises(SpecError, match="unique"):
        parse_scenario({"targets": [{"name": "a"}, {"name": "a"}]})


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"rate": 0, "duration": "10s"}, "rate"),
        ({"rate": -5, "duration": "10s"}, "rate"),
        ({"rate": 5, "duration": "0s"}, "duration"),
        ({"rate": 5}, "duration"),
        ({"rate": 5, "duration": "30d"}, "7 days"),
    ],
)
def test_bad_profiles(kw: dict, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        make_profile(None, **kw)


def test_constant_schedule_exact() -> None:
    p = make_profile(None, rate=200, duration="10s")
    offs = list(p.arrival_offsets())
    assert len(offs) == p.planned() == 2000
    assert offs[0] == 0.0 and offs[1] == pytest.approx(0.005)
    assert offs[-1] < 10.0
    p2 = make_profile(None, rate=0.3, duration="10s")  # 3 arrivals: 0, 3.33, 6.67
    assert p2.planned() == 3


def test_ramping_schedule() -> None:
    p = LoadProfile.model_validate(
        {
            "executor": "ramping",
            "start_rate": 0,
            "stages": [
                {"duration": "10s", "target": 100},
                {"duration": "10s", "target": 100},
                {"duration": "10s", "target": 0},
            ],
        }
    )
    assert p.seconds == 30
    offs = list(p.arrival_offsets())
    assert len(offs) == p.planned() == 2000  # 500 + 1000 + 500
    assert offs == sorted(offs)
    first = sum(1 for o in offs if o < 10)
    assert abs(first - 500) <= 1
    # rate is linear: half of the first stage's arrivals come in its last ~29% of time
    assert abs(sum(1 for o in offs if o < 5) - 125) <= 1
    assert p.rate_at(5) == pytest.approx(50) and p.rate_at(15) == 100 and p.rate_at(31) == 0


def test_weighted_cycle_is_proportional_and_smooth() -> None:
    sc = parse_scenario(
        {
            "targets": [
                {"name": "a", "weight": 6},
                {"name": "b", "weight": 3},
                {"name": "c", "weight": 3},
            ]
        }
    )
    cyc = sc.weighted_cycle()
    assert len(cyc) == 4  # gcd-reduced 2:1:1
    assert Counter(cyc) == {0: 2, 1: 1, 2: 1}
    assert cyc[0] == 0 and cyc[1] != 0  # smooth: no bursts of one target

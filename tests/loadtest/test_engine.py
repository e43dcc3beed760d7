"""The open-model engine against a real loopback HTTP server."""

from __future__ import annotations

import pytest

from code_foundation.errors import SpecError
from loadtest.engine import LoadRun, run_load
from loadtest.safety import NotLoopbackError
from loadtest.scenario import make_profile, parse_scenario
from tests.loadtest.conftest import Target


def _sc(url: str, targets: list[dict], timeout: str = "5s"):
    return parse_scenario({"base_url": url, "timeout": timeout, "targets": targets})


async def test_counts_statuses_bodies_and_rate(target: Target) -> None:
    sc = _sc(
        target.url,
        [
            {"name": "home", "path": "/", "weight": 2},
            {
                "name": "echo",
                "method": "POST",
                "path": "/echo",
                "json": {"a": 1},
                "headers": {"X-Test": "1"},
                "expect_status": 201,
            },
            {"name": "chunked", "path": "/chunked"},
            {"name": "fail", "path": "/fail"},
        ],
    )
    prof = make_profile(None, rate=200, duration="2s", max_vus=50)
    seen: list = []
    st = await run_load(sc, prof, on_progress=seen.append, progress_every=0.5)
    assert st.planned == 400 and st.sent + st.dropped == 400
    assert st.dropped == 0 and st.completed == 400 == target.hits
    by = {k.name: k for k in st.keys}
    assert by["home"].count == 160 and by["home"].ok == 160
    assert by["echo"].status == {"201": 80} and by["echo"].errors == 0
    assert by["chunked"].ok == 80
    assert by["fail"].errors == 80 and by["fail"].status == {"500": 80}
    assert abs(st.achieved_rate() / 200 - 1) < 0.01
    assert seen and seen[-1].sent == 400
    assert st.histogram().count == 400


async def test_dropped_when_vus_exhausted(target: Target) -> None:
    sc = _sc(target.url, [{"name": "slow", "path": "/slow?s=0.5"}])
    prof = make_profile(None, rate=40, duration="1s", max_vus=5)
    st = await run_load(sc, prof)
    assert st.planned == 40
    # 5 in flight until ~0.5s, then 5 more; every other arrival is dropped
    assert st.sent == 10 and st.dropped == 30
    assert st.completed == 10 and st.errors == 0


async def test_timeouts_counted(target: Target) -> None:
    sc = _sc(target.url, [{"name": "slow", "path": "/slow?s=1", "timeout": "200ms"}])
    prof = make_profile(None, rate=10, duration="1s", max_vus=50)
    st = await run_load(sc, prof)
    k = st.keys[0]
    assert k.count == 10 and k.timeouts == 10 and k.errors == 10 and k.ok == 0
    assert st.histogram().quantile(0.5) >= 195


async def test_no_coordinated_omission(target: Target) -> None:
    """One 400 ms server stall: requests scheduled during it wait and must show it."""
    sc = _sc(target.url, [{"name": "home", "path": "/"}])
    prof = make_profile(None, rate=100, duration="2s", max_vus=1)  # one connection
    target.stall_s = 0.4
    st = await run_load(sc, prof)
    # with one VU, arrivals during the stall are dropped, and the stalled one shows 400ms
    assert st.histogram().max >= 390
    assert st.dropped >= 30


async def test_late_generator_shows_in_latency(target: Target) -> None:
    """The generator itself is blocked 300 ms: arrivals due meanwhile are sent late,
    and their latency (from the intended time) must include the delay."""
    import asyncio
    import time

    sc = _sc(target.url, [{"name": "home", "path": "/"}])
    prof = make_profile(None, rate=100, duration="2s", max_vus=100)
    asyncio.get_running_loop().call_later(0.8, time.sleep, 0.3)
    st = await run_load(sc, prof)
    assert st.dropped == 0 and st.completed == 200
    h = st.histogram()
    assert h.max >= 280  # the first arrival due in the block waited ~300 ms
    assert h.quantile(0.9) > 100  # ~30 arrivals (15%) were 0..300 ms late


async def test_connection_refused_is_transport_error() -> None:
    sc = _sc("http://127.0.0.1:9", [{"name": "x"}], timeout="1s")
    st = await run_load(sc, make_profile(None, rate=20, duration="0.5s"))
    assert st.completed == 10 and st.keys[0].transport_errors == 10


def test_non_loopback_target_refused() -> None:
    sc = parse_scenario({"targets": [{"name": "x"}]})
    with pytest.raises(NotLoopbackError, match="loopback"):
        LoadRun(sc, make_profile(None, rate=1, duration="1s"), base_url="http://93.184.216.34/")
    with pytest.raises(SpecError, match="base_url"):
        LoadRun(sc, make_profile(None, rate=1, duration="1s"))


async def test_stop_ends_early(target: Target) -> None:
    sc = _sc(target.url, [{"name": "home"}])
    run = LoadRun(sc, make_profile(None, rate=100, duration="30s"))

    def stop_after_half_second(p) -> None:
        if p.elapsed_s > 0.4:
            run.stop()

    st = await run.run(on_progress=stop_after_half_second, progress_every=0.25)
    assert 30 <= st.sent <= 80 and st.planned == st.sent + st.dropped < 3000

"""API contract: bad input names the argument, histogram bytes, manifests, audit chain."""

from __future__ import annotations

import array
import base64
import json
import math

import numpy as np
import pytest

import rust_core as rc
import rust_core.reference as ref

IMPLS = pytest.mark.parametrize("impl", [rc, ref], ids=["rust", "reference"])

BAD_CALLS = [
    ("values", lambda m: m.percentiles([], [50])),
    ("values", lambda m: m.percentiles([1.0, math.nan], [50])),
    ("quantiles", lambda m: m.percentiles([1.0], [101])),
    ("values", lambda m: m.percentiles("abc", [50])),
    ("x", lambda m: m.mann_whitney_u([], [1.0])),
    ("y", lambda m: m.mann_whitney_u([1.0], [math.nan])),
    ("alternative", lambda m: m.mann_whitney_u([1.0], [2.0], alternative="bigger")),
    ("method", lambda m: m.mann_whitney_u([1.0], [2.0], method="magic")),
    ("x", lambda m: m.mann_whitney_u(None, [2.0])),
    ("confidence", lambda m: m.hodges_lehmann([1.0], [2.0], confidence=1.5)),
    ("y", lambda m: m.hodges_lehmann([1.0], [])),
    ("metrics", lambda m: m.judge([], {}, {})),
    ("metrics", lambda m: m.judge([{"name": "a", "direction": "up"}], {"a": [1.0]}, {"a": [1.0]})),
    ("metrics", lambda m: m.judge([{"nam": "a"}], {}, {})),
    ("metrics", lambda m: m.judge([{"name": "a"}, {"name": "a"}], {}, {})),
    ("canary", lambda m: m.judge([{"name": "a"}], [1.0], {})),
    ("groups", lambda m: m.judge([{"name": "a"}], {}, {}, groups={"default": -1.0})),
    ("confidence", lambda m: m.judge([{"name": "a"}], {}, {}, confidence=0.0)),
    ("good", lambda m: m.burn_rates([1.0, 2.0], [1.0], [1.0, 1.0], 0.99)),
    ("total", lambda m: m.burn_rates([1.0], [1.0], [1.0, 2.0], 0.99)),
    ("good", lambda m: m.burn_rates([1.0], [2.0], [1.0], 0.99)),
    ("objective", lambda m: m.burn_rates([1.0], [1.0], [1.0], 1.0)),
    ("timestamps", lambda m: m.burn_rates([], [], [], 0.99)),
    ("y", lambda m: m.theil_sen([1.0, 2.0], [1.0])),
    ("x", lambda m: m.theil_sen([1.0, 1.0], [1.0, 2.0])),
    ("x", lambda m: m.theil_sen([], [])),
    ("y", lambda m: m.mann_kendall([1.0])),
    ("x", lambda m: m.mann_kendall([1.0, 2.0], [1.0])),
    ("rules", lambda m: m.validate_manifests("kind: Pod", rules=["CODE999"])),
    ("yaml_text", lambda m: m.validate_manifests(b"kind: Pod")),  # type: ignore[arg-type]
    ("payload", lambda m: m.chain_hash("0" * 64, 12)),
    ("records[0]", lambda m: m.verify_chain([("a", "b")])),
    ("relative_error", lambda m: m.Histogram(0.0)),
    ("value", lambda m: m.Histogram().record(-1.0)),
    ("values", lambda m: m.Histogram().record_many([1.0, math.nan])),
    ("q", lambda m: m.Histogram().quantile(1.5)),
    ("other", lambda m: m.Histogram(0.01).merge(m.Histogram(0.02))),
]


@IMPLS
@pytest.mark.parametrize(
    "arg,call", BAD_CALLS, ids=[f"{i}-{a}" for i, (a, _) in enumerate(BAD_CALLS)]
)
def test_bad_input_names_argument(impl, arg, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ValueError, TypeError)) as e:
        call(impl)
    assert str(e.value).startswith(arg), str(e.value)


def test_inputs_accept_buffers_lists_and_other_dtypes() -> None:
    v = [3.0, 1.0, 2.0]
    expected = rc.percentiles(v, [50])
    for obj in (
        np.asarray(v),
        np.asarray(v, dtype=np.float32),
        np.asarray([3, 1, 2]),
        array.array("d", v),
        memoryview(array.array("d", v)),
        tuple(v),
        np.asarray(v)[::1],
    ):
        assert rc.percentiles(obj, [50]) == expected
    assert (
        rc.percentiles(np.asarray([9.0, 3.0, 8.0, 1.0, 7.0, 2.0])[1::2], [50]) == expected
    )  # strided view


def test_numpy_input_is_not_modified() -> None:
    v = np.asarray([5.0, 1.0, 4.0, 2.0, 3.0])
    before = v.copy()
    rc.percentiles(v, [10, 50, 90])
    rc.mann_whitney_u(v, v[::-1].copy())
    rc.hodges_lehmann(v, v + 1)
    rc.Histogram().record_many(v)
    assert (v == before).all()


def test_histogram_roundtrip_merge_and_json_transport() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(size=50_000), rng.lognormal(size=70_000)
    ha, hb, hall = rc.Histogram(), rc.Histogram(), rc.Histogram()
    ha.record_many(a)
    hb.record_many(b)
    hall.record_many(np.concatenate([a, b]))
    carried = json.loads(json.dumps({"h": base64.b64encode(ha.to_bytes()).decode()}))
    back = rc.Histogram.from_bytes(base64.b64decode(carried["h"]))
    assert back == ha and len(back) == 50_000
    back.merge(hb)
    assert back == hall
    assert back.sum == pytest.approx(hall.sum, rel=1e-12)
    assert back.quantiles([0.5, 0.99]) == hall.quantiles([0.5, 0.99])
    assert len(ha.to_bytes()) < 4096  # compact


def test_histogram_edges() -> None:
    h = rc.Histogram()
    assert len(h) == 0 and math.isnan(h.quantile(0.5)) and math.isnan(h.min)
    assert rc.Histogram.from_bytes(h.to_bytes()) == h
    h.record(0.0, 5)
    h.record(2.0, 0)
    assert h.quantile(0.5) == 0.0 and h.count == 5
    h.record(1e300)
    h.record(5e-324)  # subnormal
    assert h.max == 1e300 and h.quantile(1.0) == 1e300
    with pytest.raises(ValueError, match="^b:"):
        rc.Histogram.from_bytes(b"CDH1" + b"\x00" * 10)
    with pytest.raises(ValueError, match="^b:"):
        rc.Histogram.from_bytes(h.to_bytes()[:-1] + b"\xff\xff")
    assert h != rc.Histogram() and h != "histogram"
    evil = bytearray(h.to_bytes())
    evil[53:61] = (2**64 - 1).to_bytes(8, "little")  # first bucket index: would overflow
    for impl in (rc, ref):
        with pytest.raises(ValueError, match="^b:"):
            impl.Histogram.from_bytes(bytes(evil))


GOOD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod, labels: {app: web, team: a}}
spec:
  template:
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: web
        image: registry.local:5000/web:1.2.3
        resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: "1", memory: 128Mi}}
        readinessProbe: {httpGet: {path: /, port: 80}}
        livenessProbe: {httpGet: {path: /, port: 80}}
"""

BAD = """---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          volumes: [{name: host, hostPath: {path: /var/run}}]
          initContainers:
          - {name: init, image: busybox}
          containers:
          - name: job
            image: app:latest
            securityContext: {privileged: true, runAsNonRoot: false}
---
kind: [broken
---
apiVersion: v1
kind: Service
metadata: {name: svc}
"""


@IMPLS
def test_manifest_rules(impl) -> None:  # type: ignore[no-untyped-def]
    assert impl.validate_manifests(GOOD, ["app"]) == []
    vs = impl.validate_manifests(GOOD + BAD, ["app"])
    got = {(v.document, v.rule_id, v.path) for v in vs}
    p = "spec.jobTemplate.spec.template.spec"
    for expected in [
        (1, "CODE001", f"{p}.containers[0].image"),
        (1, "CODE001", f"{p}.initContainers[0].image"),
        (1, "CODE002", f"{p}.containers[0].resources.requests"),
        (1, "CODE003", f"{p}.containers[0].resources.limits"),
        (1, "CODE006", f"{p}.containers[0].securityContext.runAsNonRoot"),
        (1, "CODE007", f"{p}.containers[0].securityContext.privileged"),
        (1, "CODE008", f"{p}.volumes[0].hostPath"),
        (1, "CODE009", "metadata.labels"),
        (2, "CODE000", ""),
        (3, "CODE009", "metadata.labels"),
    ]:
        assert expected in got, expected
    assert not any(v.rule_id in ("CODE004", "CODE005") for v in vs)  # no probes for jobs
    v0 = next(v for v in vs if v.rule_id == "CODE007")
    assert (v0.kind, v0.name, v0.namespace) == ("CronJob", "nightly", "")
    assert json.loads(json.dumps(v0.to_dict()))["rule"] == "no-privileged"
    only = impl.validate_manifests(GOOD + BAD, ["app"], rules=["image-pinned"])
    assert {v.rule_id for v in only} == {"CODE000", "CODE001"}


@IMPLS
def test_manifest_garbage_never_crashes(impl) -> None:  # type: ignore[no-untyped-def]
    for text in [
        "",
        "---",
        "\x00\x01",
        "a: b: c",
        "- [",
        "kind: Pod\nspec: 3",
        "kind: Deployment",
        "{{{{",
        "? ? ?",
    ]:
        for v in impl.validate_manifests(text):
            assert v.rule_id == "CODE000"


def test_audit_chain_construction() -> None:
    import hashlib

    g = "0" * 64
    h = rc.chain_hash(g, "héllo")
    assert h == hashlib.sha256((g + "héllo").encode()).hexdigest()
    assert rc.chain_hash(g, b"x") == rc.chain_hash(g, bytearray(b"x")) == rc.chain_hash(g, "x")
    recs = [(g, "a", rc.chain_hash(g, "a"))]
    recs.append((recs[0][2], b"b", rc.chain_hash(recs[0][2], b"b")))
    assert rc.verify_chain(recs) is None
    assert rc.verify_chain([recs[1], recs[0]]) == 0
    assert rc.verify_chain(recs, genesis="1" * 64) == 0
    assert rc.verify_chain([recs[0], (g, "b", rc.chain_hash(g, "b"))]) == 1  # relinked to genesis
    assert rc.verify_chain([]) is None


def test_version_and_results_serialise() -> None:
    assert rc.judge_version() == rc.__version__
    r = rc.mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["z"] is None
    b = rc.burn_rates([0, 1], [1, 1], [1, 1], 0.999)
    assert b.to_dict()["windows"][0]["severity"] == "page"


def test_gil_released_for_heavy_work() -> None:
    """A Python thread keeps running while ``mann_whitney_u`` computes: during the call the
    ticker stamps the clock at (at least a quarter of) the rate it manages when nothing else
    runs, measured in the same run. With the GIL held it only gets the odd switch at the
    call's edges (about 1% of its rate, measured with ``sorted`` of a 3M-float list)."""
    import threading
    import time

    v = np.random.default_rng(0).random(3_000_000)
    w = v[::-1].copy()
    stamps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        while len(stamps) < 100:  # the ticker's own rate, with the main thread idle
            time.sleep(0.01)
        idle = list(stamps)
        rate = (len(idle) - 1) / (idle[-1] - idle[0])
        t0 = time.perf_counter()
        rc.mann_whitney_u(v, w)
        t1 = time.perf_counter()
        inside = sum(1 for x in list(stamps) if t0 < x < t1)
    finally:
        stop.set()
        t.join()
    expected = rate * (t1 - t0)
    assert inside >= 0.25 * expected, (inside, expected)


def test_histogram_pickle_and_copy() -> None:
    import copy
    import pickle

    h = rc.Histogram(0.02)
    h.record_many([1.0, 2.0, 3.0])
    assert pickle.loads(pickle.dumps(h)) == h  # noqa: S301 - our own bytes
    c = copy.deepcopy(h)
    c.record(4.0)
    assert c != h and h.count == 3

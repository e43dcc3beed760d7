"""Hypothesis: the Rust engine equals the pure-Python reference on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import rust_core as rc
import rust_core.reference as ref

from .rc_testutil import RC, RC_SLOW, same

# small integer-ish grids give many ties and duplicates; wide floats give none
tied = st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=40)
wide = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
)
sample = st.one_of(tied, wide)
pos = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False)),
    min_size=0,
    max_size=200,
)


@RC
@given(sample, st.lists(st.floats(0, 100), min_size=1, max_size=8))
def test_percentiles(values: list[float], qs: list[float]) -> None:
    assert rc.percentiles(values, qs) == ref.percentiles(values, qs)
    assert rc.percentiles(np.asarray(values), qs) == ref.percentiles(values, qs)


@RC
@given(
    st.lists(st.floats(0, 1e6), min_size=1, max_size=6000),
    st.lists(st.floats(0, 100), min_size=1, max_size=40),
)
def test_percentiles_many_quantiles_and_large(values: list[float], qs: list[float]) -> None:
    assert rc.percentiles(values, qs) == ref.percentiles(values, qs)


@RC
@given(
    sample,
    sample,
    st.sampled_from(["two-sided", "less", "greater"]),
    st.sampled_from(["auto", "asymptotic"]),
)
def test_mann_whitney(x: list[float], y: list[float], alt: str, method: str) -> None:
    assert same(
        rc.mann_whitney_u(x, y, alt, method), ref.mann_whitney_u(x, y, alt, method), rel=1e-12
    )


@RC
@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=12, unique=True),
    st.lists(st.floats(-100, 100), min_size=1, max_size=12, unique=True),
    st.sampled_from(["two-sided", "less", "greater"]),
)
def test_mann_whitney_exact(x: list[float], y: list[float], alt: str) -> None:
    assert same(
        rc.mann_whitney_u(x, y, alt, "exact"), ref.mann_whitney_u(x, y, alt, "exact"), rel=1e-12
    )


@RC
@given(sample, sample, st.sampled_from([0.8, 0.9, 0.95, 0.98, 0.99]))
def test_hodges_lehmann(x: list[float], y: list[float], conf: float) -> None:
    assert same(rc.hodges_lehmann(x, y, conf), ref.hodges_lehmann(x, y, conf))


@RC_SLOW
@given(st.integers(0, 2**32 - 1), st.integers(300, 700), st.integers(300, 700), st.booleans())
def test_hodges_lehmann_large_selection_path(seed: int, n: int, m: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.0, n)
    y = rng.normal(0.0, 1.0, m)
    if ties:
        x, y = x.round(1), y.round(1)
    assert same(rc.hodges_lehmann(x, y, 0.98), ref.hodges_lehmann(x.tolist(), y.tolist(), 0.98))


@RC
@given(pos, pos)
def test_histogram(a: list[float], b: list[float]) -> None:
    h, r = rc.Histogram(), ref.Histogram()
    h.record_many(a)
    r.record_many(a)
    for v in b:
        h.record(v)
        r.record(v)
    assert h.to_bytes() == r.to_bytes()
    qs = [0.0, 0.01, 0.25, 0.5, 0.9, 0.999, 1.0]
    assert same(h.quantiles(qs), r.quantiles(qs))
    assert (h.count, same(h.min, r.min), same(h.max, r.max), same(h.sum, r.sum)) == (
        r.count,
        True,
        True,
        True,
    )
    assert ref.Histogram.from_bytes(h.to_bytes()) == r
    assert rc.Histogram.from_bytes(r.to_bytes()) == h


metric_spec = st.fixed_dictionaries(
    {
        "direction": st.sampled_from(["increase", "decrease", "either"]),
        "critical": st.booleans(),
        "must_have_data": st.booleans(),
        "nan_strategy": st.sampled_from(["remove", "replace"]),
        "allowed_increase": st.sampled_from([1.0, 1.1]),
        "allowed_decrease": st.sampled_from([1.0, 0.9]),
        "outlier_factor": st.sampled_from([3.0, 1.5, None]),
        "group": st.sampled_from(["latency", "errors", "default"]),
    }
)
series = st.one_of(
    st.just([]),
    st.lists(st.integers(0, 30).map(float), min_size=1, max_size=60),
    st.lists(st.floats(0, 1000), min_size=1, max_size=60),
    st.lists(st.sampled_from([1.0, 2.0, float("nan")]), min_size=1, max_size=20),
)


@RC
@given(
    st.lists(st.tuples(metric_spec, series, series, st.floats(0.5, 2.0)), min_size=1, max_size=5),
    st.sampled_from([None, {"latency": 60.0}, {"latency": 50.0, "errors": 50.0}]),
)
def test_judge(rows: list, groups: dict | None) -> None:
    metrics, canary, baseline = [], {}, {}
    for i, (spec, c, b, scale) in enumerate(rows):
        name = f"m{i}"
        metrics.append({"name": name, **spec})
        canary[name] = [v * scale for v in c]
        baseline[name] = b
    # p-values may differ in the last bit (libm vs CPython erfc)
    assert same(
        rc.judge(metrics, canary, baseline, groups),
        ref.judge(metrics, canary, baseline, groups),
        rel=1e-12,
    )


@RC
@given(
    st.lists(
        st.tuples(st.floats(0, 4 * 86400), st.integers(0, 100), st.integers(0, 100)), max_size=300
    ),
    st.sampled_from([0.9, 0.99, 0.999]),
    st.one_of(st.none(), st.floats(0, 5 * 86400)),
)
def test_burn_rates(rows: list, objective: float, now: float | None) -> None:
    t = [r[0] for r in rows]
    total = [float(max(r[1], r[2])) for r in rows]
    good = [float(min(r[1], r[2])) for r in rows]
    if not rows and now is None:
        now = 0.0
    assert same(
        rc.burn_rates(t, good, total, objective, now=now),
        ref.burn_rates(t, good, total, objective, now=now),
    )
    w = [(600.0, 60.0, 2.0, "fast")]
    assert same(
        rc.burn_rates(t, good, total, objective, w, now, 86400.0),
        ref.burn_rates(t, good, total, objective, w, now, 86400.0),
    )


xy = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.one_of(st.integers(0, 10).map(float), st.floats(-1e3, 1e3)), min_size=n, max_size=n
        ),
        st.lists(
            st.one_of(st.integers(0, 5).map(float), st.floats(-1e3, 1e3)), min_size=n, max_size=n
        ),
    )
)


@RC
@given(xy, st.sampled_from([0.9, 0.95, 0.99]))
def test_theil_sen(pair: tuple, conf: float) -> None:
    x, y = pair
    if len(set(x)) < 2:
        return
    assert same(rc.theil_sen(x, y, conf), ref.theil_sen(x, y, conf))


@RC
@given(xy, st.booleans())
def test_mann_kendall(pair: tuple, with_x: bool) -> None:
    x, y = pair
    a = rc.mann_kendall(y, x if with_x else None)
    b = ref.mann_kendall(y, x if with_x else None)
    assert same(a, b, rel=1e-12)


names = st.text(alphabet="abcdefghijklmnop-", min_size=1, max_size=8)
container = st.fixed_dictionaries(
    {"name": names},
    optional={
        "image": st.sampled_from(
            ["nginx", "nginx:latest", "nginx:1.25", "r:5000/a", "r:5000/a:2", "a@sha256:ab", ""]
        ),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "requests": st.dictionaries(
                    st.sampled_from(["cpu", "memory"]), st.just("1"), max_size=2
                ),
                "limits": st.dictionaries(
                    st.sampled_from(["cpu", "memory"]), st.just("1"), max_size=2
                ),
            },
        ),
        "readinessProbe": st.just({"httpGet": {"path": "/", "port": 80}}),
        "livenessProbe": st.one_of(st.just({"tcpSocket": {"port": 80}}), st.just("bad")),
        "securityContext": st.fixed_dictionaries(
            {}, optional={"runAsNonRoot": st.booleans(), "privileged": st.booleans()}
        ),
    },
)
pod_spec = st.fixed_dictionaries(
    {"containers": st.lists(container, max_size=3)},
    optional={
        "initContainers": st.lists(container, max_size=2),
        "securityContext": st.fixed_dictionaries({}, optional={"runAsNonRoot": st.booleans()}),
        "volumes": st.lists(
            st.one_of(
                st.fixed_dictionaries({"name": names, "hostPath": st.just({"path": "/x"})}),
                st.fixed_dictionaries({"name": names, "emptyDir": st.just({})}),
            ),
            max_size=3,
        ),
    },
)


def _wrap(kind: str, spec: dict, labels: dict) -> dict:
    meta = {"name": "obj", "namespace": "ns", "labels": labels}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "CronJob":
        return {
            "kind": kind,
            "metadata": meta,
            "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
        }
    if kind == "Service":
        return {"kind": kind, "metadata": meta, "spec": {"ports": [{"port": 80}]}}
    return {"kind": kind, "metadata": meta, "spec": {"template": {"spec": spec}}}


documents = st.lists(
    st.one_of(
        st.builds(
            _wrap,
            st.sampled_from(
                [
                    "Pod",
                    "Deployment",
                    "StatefulSet",
                    "DaemonSet",
                    "Job",
                    "CronJob",
                    "ReplicaSet",
                    "Service",
                ]
            ),
            pod_spec,
            st.dictionaries(st.sampled_from(["app", "team", "tier"]), names, max_size=3),
        ),
        st.sampled_from(
            ["kind: [unclosed", "just a string", "# only a comment", "{a: 1}", "- 1\n- 2"]
        ),
    ),
    max_size=6,
)


@RC
@given(documents, st.lists(st.sampled_from(["app", "team", "owner"]), max_size=2, unique=True))
def test_validate_manifests(docs: list, labels: list[str]) -> None:
    import json

    text = "\n---\n".join(d if isinstance(d, str) else json.dumps(d) for d in docs)
    a = rc.validate_manifests(text, labels)
    b = ref.validate_manifests(text, labels)
    # parse-error messages come from different YAML parsers: compare all but their text
    strip = [(v.to_dict() | {"message": ""}) if v.rule_id == "CODE000" else v.to_dict() for v in a]
    strip_b = [
        (v.to_dict() | {"message": ""}) if v.rule_id == "CODE000" else v.to_dict() for v in b
    ]
    assert strip == strip_b


@RC
@given(
    st.lists(st.one_of(st.binary(max_size=64), st.text(max_size=32)), max_size=20),
    st.integers(0, 25),
)
def test_audit_chain(payloads: list, tamper: int) -> None:
    recs = []
    prev = rc.GENESIS
    for p in payloads:
        h = rc.chain_hash(prev, p)
        assert h == ref.chain_hash(prev, p)
        recs.append((prev, p, h))
        prev = h
    assert rc.verify_chain(recs) is None and ref.verify_chain(recs) is None
    if tamper < len(recs):
        p, pl, h = recs[tamper]
        recs[tamper] = (p, (pl + "x") if isinstance(pl, str) else pl + b"x", h)
        assert rc.verify_chain(recs) == ref.verify_chain(recs) == tamper


@RC
@given(st.binary(max_size=120), st.integers(0, 200), st.integers(0, 255))
def test_from_bytes_never_crashes(junk: bytes, pos: int, byte: int) -> None:
    h = rc.Histogram()
    h.record_many([0.0, 1.0, 2.5, 1e9])
    good = bytearray(h.to_bytes())
    good[pos % len(good)] = byte
    for blob in (junk, bytes(good), b"CDH1" + junk):
        try:
            back = rc.Histogram.from_bytes(blob)
        except ValueError as e:
            assert str(e).startswith("b:")
            continue
        back.quantiles([0.0, 0.5, 1.0])  # usable, no panic
        assert ref.Histogram.from_bytes(blob).to_bytes() == back.to_bytes()


@RC
@given(st.text(max_size=300))
def test_validate_manifests_never_crashes(text: str) -> None:
    for v in rc.validate_manifests(text, ["app"]):
        assert v.rule_id.startswith("CODE")


def test_rule_table_pinned_to_native() -> None:
    """The Python face re-exports the native rule table; the reference keeps its own copy."""
    from rust_core import _native

    assert rc.RULES is _native.RULES
    assert ref.RULES == _native.RULES

"""Reference manifest policy checks and audit hash chain."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from rust_core._types import Violation
from rust_core.reference._common import (
    _q,
)

_GENESIS_DEFAULT = "0" * 64

# The reference copy of the rule table; tests pin it to the native `_native.RULES`.
RULES: tuple[tuple[str, str], ...] = (
    ("CODE000", "parse-error"),
    ("CODE001", "image-pinned"),
    ("CODE002", "resources-requests"),
    ("CODE003", "resources-limits"),
    ("CODE004", "readiness-probe"),
    ("CODE005", "liveness-probe"),
    ("CODE006", "run-as-non-root"),
    ("CODE007", "no-privileged"),
    ("CODE008", "no-host-path"),
    ("CODE009", "required-labels"),
)


# ---------------------------------------------------------------- manifests


def _split_documents(text: str) -> list[str]:
    segs: list[str] = []
    cur: list[str] = []
    for line in text.split("\n"):
        ln = line[:-1] if line.endswith("\r") else line
        start = ln.startswith("---") and (len(ln) == 3 or ln[3] in " \t")
        if start or ln == "...":
            segs.append("".join(cur))
            cur = [ln[3:] + "\n"] if start else []
        else:
            cur.append(ln + "\n")
    segs.append("".join(cur))

    def blank(seg: str) -> bool:
        return all(not s.strip() or s.strip().startswith("#") for s in seg.splitlines())

    return [s for s in segs if not blank(s)]


def _image_problem(image: str) -> str | None:
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {_q(image)} has no tag or digest; pin a version tag or a digest"
    tag = last.rsplit(":", 1)[1]
    if tag == "":
        return f"image {_q(image)} has an empty tag; pin a version tag or a digest"
    if tag == "latest":
        return f"image {_q(image)} uses the mutable tag 'latest'; pin a version tag or a digest"
    return None


_POD_PATHS = {
    "Pod": ("spec",),
    **{
        k: ("spec", "template", "spec")
        for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
    },
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _get(v: Any, key: str) -> Any:
    return v.get(key) if isinstance(v, dict) else None


def _str(v: Any, key: str) -> str:
    r = _get(v, key)
    return r if isinstance(r, str) else ""


def _bool(v: Any, key: str) -> bool | None:
    r = _get(v, key)
    return r if isinstance(r, bool) else None


def validate_manifests(
    yaml_text: str, required_labels: Sequence[str] = (), rules: Sequence[str] | None = None
) -> list[Violation]:
    import yaml

    if not isinstance(yaml_text, str):
        raise TypeError(f"yaml_text: expected str, got {type(yaml_text).__name__}")
    if isinstance(required_labels, str):
        raise TypeError("required_labels: expected a sequence of label names, not a str")
    if isinstance(rules, str):
        raise TypeError("rules: expected a sequence of rule ids or names, not a str")
    mask = [rules is None] * len(RULES)
    mask[0] = True
    for r in rules or ():
        hits = [i for i, (rid, name) in enumerate(RULES) if r in (rid, name)]
        if not hits:
            raise ValueError(f"rules: unknown rule {_q(r)}")
        mask[hits[0]] = True
    labels_req = [str(x) for x in required_labels]
    out: list[Violation] = []
    for doc_i, seg in enumerate(_split_documents(yaml_text)):
        meta_ctx = {"kind": "", "name": "", "namespace": ""}

        def add(
            rule: int, path: str, msg: str, doc_i: int = doc_i, meta_ctx: dict[str, str] = meta_ctx
        ) -> None:
            if mask[rule]:
                out.append(
                    Violation(
                        RULES[rule][0],
                        RULES[rule][1],
                        doc_i,
                        meta_ctx["kind"],
                        meta_ctx["name"],
                        meta_ctx["namespace"],
                        path,
                        msg,
                    )
                )

        try:
            doc = yaml.safe_load(seg)
        except yaml.YAMLError as e:
            add(0, "", f"invalid YAML: {str(e).splitlines()[0] if str(e) else 'parse error'}")
            continue
        if not isinstance(doc, dict):
            add(0, "", "document is not a mapping")
            continue
        meta = _get(doc, "metadata")
        meta_ctx.update(
            kind=_str(doc, "kind"), name=_str(meta, "name"), namespace=_str(meta, "namespace")
        )
        kind = meta_ctx["kind"]
        if not kind:
            add(0, "kind", "document has no kind")
            continue
        labels = _get(meta, "labels")
        for lab in labels_req:
            if not isinstance(labels, dict) or lab not in labels:
                add(9, "metadata.labels", f"missing required label {_q(lab)}")
        path = _POD_PATHS.get(kind)
        if path is None:
            continue
        spec: Any = doc
        for k in path:
            spec = _get(spec, k)
        pod_path = ".".join(path)
        if not isinstance(spec, dict):
            add(0, pod_path, "pod spec is missing or not a mapping")
            continue
        pod_non_root = _bool(_get(spec, "securityContext"), "runAsNonRoot")
        probes = kind not in ("Job", "CronJob")

        def check(c: Any, base: str, probes: bool) -> None:
            if not isinstance(c, dict):
                add(0, base, "container is not a mapping")
                return
            cname = _q(_str(c, "name"))
            img = _get(c, "image")
            if isinstance(img, str) and img:
                prob = _image_problem(img)
                if prob:
                    add(1, f"{base}.image", f"container {cname}: {prob}")
            else:
                add(1, f"{base}.image", f"container {cname}: image is missing")
            res = _get(c, "resources")
            for rule, key in ((2, "requests"), (3, "limits")):
                sect = _get(res, key)
                missing = [k for k in ("cpu", "memory") if _get(sect, k) is None]
                if missing:
                    add(
                        rule,
                        f"{base}.resources.{key}",
                        f"container {cname}: resources.{key} missing {', '.join(missing)}",
                    )
            if probes:
                for rule, key in ((4, "readinessProbe"), (5, "livenessProbe")):
                    if not isinstance(_get(c, key), dict):
                        add(rule, f"{base}.{key}", f"container {cname}: no {key}")
            sc = _get(c, "securityContext")
            non_root = _bool(sc, "runAsNonRoot")
            if non_root is None:
                non_root = pod_non_root  # noqa: B023
            if non_root is not True:
                add(
                    6,
                    f"{base}.securityContext.runAsNonRoot",
                    f"container {cname}: runAsNonRoot is not true (container or pod securityContext)",
                )
            if _bool(sc, "privileged") is True:
                add(7, f"{base}.securityContext.privileged", f"container {cname}: runs privileged")

        cs = _get(spec, "containers")
        if isinstance(cs, list):
            for i, c in enumerate(cs):
                check(c, f"{pod_path}.containers[{i}]", probes)
        else:
            add(0, f"{pod_path}.containers", "containers is missing or not a list")
        ics = _get(spec, "initContainers")
        if isinstance(ics, list):
            for i, c in enumerate(ics):
                check(c, f"{pod_path}.initContainers[{i}]", False)
        vols = _get(spec, "volumes")
        if isinstance(vols, list):
            for j, v in enumerate(vols):
                if isinstance(v, dict) and "hostPath" in v:
                    add(
                        8,
                        f"{pod_path}.volumes[{j}].hostPath",
                        f"volume {_q(_str(v, 'name'))} mounts a hostPath",
                    )
    out.sort(key=lambda v: (v.document, v.rule_id, v.path, v.message))
    return out


# ---------------------------------------------------------------- audit chain


def _payload(p: Any, name: str) -> bytes:
    if isinstance(p, str):
        return p.encode("utf-8")
    if isinstance(p, (bytes, bytearray, memoryview)):
        return bytes(p)
    raise TypeError(f"{name}: expected bytes or str, got {type(p).__name__}")


def chain_hash(prev_hash: str, payload: bytes | str) -> str:
    if not isinstance(prev_hash, str):
        raise TypeError("prev_hash: expected str")
    return hashlib.sha256(prev_hash.encode("utf-8") + _payload(payload, "payload")).hexdigest()


def verify_chain(
    records: Sequence[tuple[str, bytes | str, str]], genesis: str = _GENESIS_DEFAULT
) -> int | None:
    recs = []
    for i, r in enumerate(records):
        if isinstance(r, (str, bytes)) or not isinstance(r, Sequence) or len(r) != 3:
            raise TypeError(f"records[{i}]: expected a (prev_hash, payload, hash) tuple")
        prev, payload, h = r
        if not isinstance(prev, str):
            raise TypeError(f"records[{i}][0]: expected str")
        if not isinstance(h, str):
            raise TypeError(f"records[{i}][2]: expected str")
        recs.append((prev, _payload(payload, f"records[{i}][1]"), h))
    expected = genesis
    for i, (prev, payload, h) in enumerate(recs):
        if prev != expected or hashlib.sha256(prev.encode("utf-8") + payload).hexdigest() != h:
            return i
        expected = h
    return None

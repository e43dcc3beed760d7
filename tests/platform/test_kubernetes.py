# ruff: noqa: F811 - pytest fixtures imported from tests.servers are parameter names
# mypy: disable-error-code="union-attr,index,arg-type"
"""KubernetesPlatform through the real ``kubernetes`` client against kmock's emulator over
HTTP (``tests.servers.kmock_server``: ``KubernetesEmulator`` + ``kmock.Server`` on
127.0.0.1 in a background thread). Each test uses its own namespace.

What kmock lacks and how the tests stand in for it (said again where it matters):
* no controllers: ``FakeDeploymentController`` below plays the Deployment controller and
  writes ``status`` through the ``/status`` subresource, as kube-controller-manager would;
* no ``metadata.generation``: the emulator subclass in ``tests.servers`` bumps it on spec
  changes, as the API server does;
* no label selectors and no list merge on patch: the platform filters by labels
  client-side and only sends JSON merge patches (lists replaced), so neither matters.

``test_real_cluster_opt_in`` runs the same scenario against a real cluster when
``KUBECONFIG`` is set (replica-ratio traffic, so no Gateway API CRDs are needed)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import kmock
import pytest
import yaml
from kubernetes import client

from activities.artifacts import LocalArtifactStore
from activities.platform.base import (
    PlatformConflict,
    PlatformError,
    PlatformUnavailable,
    UnhealthyVersion,
)
from activities.platform.kubernetes import (
    KubernetesPlatform,
    ManifestRejected,
    SecretResolutionFailed,
)
from activities.secrets import SecretResolver
from activities.settings import Settings
from tests.servers import (  # noqa: F401
    BaoServer,
    KubeServer,
    free_port,
    kmock_server,
    openbao_server,
)
from workflows.models import (
    ApplyVersionInput,
    DescribeInput,
    RetireVersionInput,
    SetTrafficInput,
)
from workflows.spec import DeploymentSpec

MERGE = "application/merge-patch+json"


class FakeDeploymentController:
    """Stands in for kube-controller-manager (kmock has no controllers): whenever a
    Deployment's generation is ahead of status.observedGeneration it writes the status a
    controller would. Images tagged ``broken`` report ProgressDeadlineExceeded; images
    tagged ``stuck`` never get available replicas."""

    def __init__(self, api: Any) -> None:
        self.apps = client.AppsV1Api(api)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001,S112 - keep reconciling, like a controller
                continue

    def reconcile(self) -> None:
        for d in self.apps.list_deployment_for_all_namespaces().items:
            gen = d.metadata.generation
            if gen is None or (d.status and d.status.observed_generation == gen):
                continue
            want = d.spec.replicas if d.spec.replicas is not None else 1
            image = d.spec.template.spec.containers[0].image
            status: dict[str, Any] = {"observedGeneration": gen, "replicas": want,
                                      "updatedReplicas": want}  # fmt: skip
            if image.endswith("broken"):
                status["availableReplicas"] = 0
                status["conditions"] = [{"type": "Progressing", "status": "False",
                                         "reason": "ProgressDeadlineExceeded",
                                         "message": "ReplicaSet has timed out progressing."}]  # fmt: skip
            elif image.endswith("stuck"):
                status["availableReplicas"] = 0
                status["readyReplicas"] = 0
            else:
                status["availableReplicas"] = status["readyReplicas"] = want
            self.apps.patch_namespaced_deployment_status(
                d.metadata.name, d.metadata.namespace, {"status": status}, _content_type=MERGE
            )


@pytest.fixture(scope="module")
def controller(kmock_server: KubeServer) -> Iterator[FakeDeploymentController]:
    ctl = FakeDeploymentController(kmock_server.api_client())
    ctl.thread.start()
    yield ctl
    ctl.stop.set()
    ctl.thread.join(5)


@pytest.fixture
def ns() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def platform(
    kmock_server: KubeServer,
    controller: FakeDeploymentController,
    store: LocalArtifactStore,
) -> KubernetesPlatform:
    return KubernetesPlatform(
        kmock_server.api_client(), artifacts=store, poll_interval=0.05, rollout_grace=0
    )


def spec(version: str, ns: str, image: str | None = None, **kw: Any) -> DeploymentSpec:
    data: dict[str, Any] = {
        "service": "web",
        "environment": "prod",
        "version": version,
        "platform": "kubernetes",
        "namespace": ns,
        "labels": {"team": "payments"},
        "replicas": 2,
        "artifact": {
            "image": image or f"registry.example/web:{version}",
            "port": 8080,
            "env": {"MODE": "a"},
        },  # fmt: skip
        "health_check": {"path": "/ready", "timeout": "20s", "interval": "2s"},
    }
    data.update(kw)
    return DeploymentSpec.model_validate(data)


def apply_input(s: DeploymentSpec, key: str = "k", weight: int | None = None) -> ApplyVersionInput:
    return ApplyVersionInput(spec=s, idempotency_key=f"{s.workflow_id()}-{key}",
                             initial_weight=weight)  # fmt: skip


def traffic(ns: str, weights: dict[str, int], key: str = "t") -> SetTrafficInput:
    return SetTrafficInput(service="web", environment="prod", weights=weights,
                           idempotency_key=key, platform="kubernetes", namespace=ns)  # fmt: skip


def describe(ns: str) -> DescribeInput:
    return DescribeInput(service="web", environment="prod", platform="kubernetes", namespace=ns)


def route_weights(kube: KubeServer, ns: str) -> dict[str, int]:
    obj = client.CustomObjectsApi(kube.api_client()).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", ns, "httproutes", "web"
    )
    return {b["name"]: b["weight"] for b in obj["spec"]["rules"][0]["backendRefs"]}


async def test_apply_renders_validates_archives_and_waits(
    platform: KubernetesPlatform,
    kmock_server: KubeServer,
    ns: str,
    store: LocalArtifactStore,
) -> None:
    res = await platform.apply_version(apply_input(spec("v1", ns), weight=100))
    assert (res.changed, res.instances, res.version) == (True, 2, "v1")
    assert res.endpoint == f"http://web.{ns}.svc:80"
    apps = client.AppsV1Api(kmock_server.api_client())
    dep = apps.read_namespaced_deployment("web-v1", ns)
    assert dep.metadata.labels["app"] == "web" and dep.metadata.labels["version"] == "v1"
    assert dep.metadata.labels["app.kubernetes.io/managed-by"] == "code"
    assert dep.metadata.labels["team"] == "payments"
    assert dep.spec.progress_deadline_seconds == 20
    c = dep.spec.template.spec.containers[0]
    assert c.readiness_probe.http_get.path == "/ready" and c.liveness_probe is not None
    assert c.resources.limits["memory"] and c.resources.requests["cpu"]
    assert dep.spec.template.spec.security_context.run_as_non_root is True
    svc = client.CoreV1Api(kmock_server.api_client()).read_namespaced_service("web-v1", ns)
    assert svc.spec.selector == {"app": "web", "version": "v1"}
    assert route_weights(kmock_server, ns) == {"web-v1": 100}  # initial_weight on first deploy
    archived = store.list("releases/web/prod/")
    [manifests] = [k for k in archived if k.endswith("manifests.yaml")]
    kinds = [d["kind"] for d in yaml.safe_load_all(store.get(manifests))]
    assert kinds == ["Deployment", "Service", "Service"]
    [route] = [k for k in archived if k.endswith("httproute.yaml")]
    assert "weight: 100" in store.get(route).decode()


async def test_create_or_patch_is_idempotent_and_rollback_restores_template(
    platform: KubernetesPlatform,
    kmock_server: KubeServer,
    ns: str,
) -> None:
    apps = client.AppsV1Api(kmock_server.api_client())
    first = spec("v1", ns)
    assert (await platform.apply_version(apply_input(first))).changed
    gen = apps.read_namespaced_deployment("web-v1", ns).metadata.generation
    again = await platform.apply_version(apply_input(first, key="retry"))
    assert not again.changed  # same spec hash: nothing patched
    assert apps.read_namespaced_deployment("web-v1", ns).metadata.generation == gen

    changed = spec("v1", ns, artifact={"image": "registry.example/web:v1", "env": {"MODE": "b"}})
    assert (await platform.apply_version(apply_input(changed, key="2"))).changed
    env = apps.read_namespaced_deployment("web-v1", ns).spec.template.spec.containers[0].env
    assert {e.name: e.value for e in env}["MODE"] == "b"
    # rollback: re-applying the previous spec restores the previous template
    assert (await platform.apply_version(apply_input(first, key="3"))).changed
    env = apps.read_namespaced_deployment("web-v1", ns).spec.template.spec.containers[0].env
    assert {e.name: e.value for e in env}["MODE"] == "a"


async def test_canary_traffic_and_rollback_of_weights(
    platform: KubernetesPlatform,
    kmock_server: KubeServer,
    ns: str,
) -> None:
    await platform.apply_version(apply_input(spec("v1", ns), weight=100))
    await platform.apply_version(apply_input(spec("v2", ns)))
    assert route_weights(kmock_server, ns) == {"web-v1": 100}  # not the first: untouched
    res = await platform.set_traffic(traffic(ns, {"v1": 90, "v2": 10}))
    assert res.changed and res.weights == {"v1": 90, "v2": 10}
    assert route_weights(kmock_server, ns) == {"web-v1": 90, "web-v2": 10}
    assert not (await platform.set_traffic(traffic(ns, {"v1": 90, "v2": 10}, "t2"))).changed
    d = await platform.describe(describe(ns))
    assert d.exists and d.versions == ["v1", "v2"] and d.weights == {"v1": 90, "v2": 10}
    assert d.healthy == {"v1": True, "v2": True}

    with pytest.raises(PlatformConflict, match="still receives 10%"):
        await platform.retire_version(RetireVersionInput(
            service="web", environment="prod", version="v2", idempotency_key="r0",
            platform="kubernetes", namespace=ns))  # fmt: skip
    forced = RetireVersionInput(service="web", environment="prod", version="v1", force=True,
                                idempotency_key="f", platform="kubernetes", namespace=ns)  # fmt: skip
    await platform.apply_version(apply_input(spec("v3", ns)))
    await platform.set_traffic(traffic(ns, {"v1": 80, "v2": 10, "v3": 10}, "t3"))
    assert (await platform.retire_version(forced)).changed  # v1's 80% moves pro rata
    assert route_weights(kmock_server, ns) == {"web-v2": 50, "web-v3": 50}
    await platform.apply_version(apply_input(spec("v1", ns), key="back"))
    await platform.set_traffic(traffic(ns, {"v1": 90, "v2": 10}, "t4"))
    # rollback: weights back to the stable version, canary retired
    await platform.set_traffic(traffic(ns, {"v1": 100}, "rb"))
    assert route_weights(kmock_server, ns) == {"web-v1": 100}
    retire = RetireVersionInput(service="web", environment="prod", version="v2",
                                idempotency_key="r1", platform="kubernetes", namespace=ns)  # fmt: skip
    assert (await platform.retire_version(retire)).changed
    assert not (await platform.retire_version(retire)).changed
    assert (await platform.describe(describe(ns))).versions == ["v1", "v3"]
    with pytest.raises(PlatformConflict, match="sum to 100"):
        await platform.set_traffic(traffic(ns, {"v1": 50}))
    with pytest.raises(PlatformConflict, match="v9 not applied"):
        await platform.set_traffic(traffic(ns, {"v1": 50, "v9": 50}))
    assert not (await platform.describe(describe(f"{ns}-empty"))).exists


async def test_replica_ratio_fallback_is_labelled_approximate(
    kmock_server: KubeServer,
    controller: FakeDeploymentController,
    ns: str,
) -> None:
    plat = KubernetesPlatform(kmock_server.api_client(), traffic_mode="replicas",
                              poll_interval=0.05, rollout_grace=0)  # fmt: skip
    await plat.apply_version(apply_input(spec("v1", ns, replicas=4)))
    await plat.apply_version(apply_input(spec("v2", ns, replicas=4)))
    assert (await plat.set_traffic(traffic(ns, {"v1": 75, "v2": 25}))).changed
    apps = client.AppsV1Api(kmock_server.api_client())
    assert apps.read_namespaced_deployment("web-v1", ns).spec.replicas == 3
    assert apps.read_namespaced_deployment("web-v2", ns).spec.replicas == 1
    svc = client.CoreV1Api(kmock_server.api_client()).read_namespaced_service("web", ns)
    assert svc.metadata.annotations["code.dev/traffic-mode"] == "replica-ratio (approximate)"
    assert (await plat.describe(describe(ns))).weights == {"v1": 75, "v2": 25}
    await plat.set_traffic(traffic(ns, {"v1": 0, "v2": 100}))
    assert apps.read_namespaced_deployment("web-v1", ns).spec.replicas == 0
    assert apps.read_namespaced_deployment("web-v2", ns).spec.replicas == 4


async def test_rollout_failures_are_unhealthy_and_not_retryable(
    platform: KubernetesPlatform, ns: str
) -> None:
    # the fake controller reports ProgressDeadlineExceeded for this image
    with pytest.raises(UnhealthyVersion, match="ProgressDeadlineExceeded") as info:
        await platform.apply_version(
            apply_input(spec("v1", ns, image="registry.example/web:broken"))
        )
    assert not info.value.retryable
    # never available: our poll gives up at progressDeadlineSeconds (10s minimum)
    stuck = spec("v2", ns, image="registry.example/web:stuck",
                 health_check={"path": "/ready", "timeout": "1s"})  # fmt: skip
    with pytest.raises(UnhealthyVersion, match="progressDeadlineSeconds=10"):
        await platform.apply_version(apply_input(stuck))


async def test_policy_violation_applies_nothing(
    platform: KubernetesPlatform,
    kmock_server: KubeServer,
    ns: str,
    store: LocalArtifactStore,
) -> None:
    with pytest.raises(ManifestRejected, match="CODE001") as info:
        await platform.apply_version(
            apply_input(spec("v1", ns, image="registry.example/web:latest"))
        )
    assert not info.value.retryable
    apps = client.AppsV1Api(kmock_server.api_client())
    assert apps.list_namespaced_deployment(ns).items == []
    assert client.CoreV1Api(kmock_server.api_client()).list_namespaced_service(ns).items == []
    assert store.list("") == []  # not archived either


async def test_secrets_resolved_into_a_secret_and_never_archived(
    kmock_server: KubeServer,
    controller: FakeDeploymentController,
    openbao_server: BaoServer,
    store: LocalArtifactStore,
    ns: str,
) -> None:
    value = f"pw-{uuid.uuid4().hex}"
    root = hvac.Client(url=openbao_server.url, token=openbao_server.root_token)
    root.secrets.kv.v2.create_or_update_secret(path=f"{ns}/db", secret={"password": value})
    plat = KubernetesPlatform(
        kmock_server.api_client(), artifacts=store, poll_interval=0.05,
        secrets=SecretResolver(openbao_server.url, token=openbao_server.root_token),
    )  # fmt: skip
    s = spec("v1", ns, artifact={"image": "registry.example/web:v1",
                                 "secrets": {"DB_PASSWORD": f"vault:secret/data/{ns}/db#password"}})  # fmt: skip
    res = await plat.apply_version(apply_input(s))
    assert res.secret_versions == {"DB_PASSWORD": "vault-v1"}
    assert value not in res.model_dump_json()
    sec = client.CoreV1Api(kmock_server.api_client()).read_namespaced_secret("web-v1-secrets", ns)
    assert (sec.string_data or {}).get("DB_PASSWORD") == value  # kmock keeps stringData as sent
    env = client.AppsV1Api(kmock_server.api_client()).read_namespaced_deployment(
        "web-v1", ns).spec.template.spec.containers[0].env  # fmt: skip
    ref = next(e for e in env if e.name == "DB_PASSWORD").value_from.secret_key_ref
    assert (ref.name, ref.key) == ("web-v1-secrets", "DB_PASSWORD")
    for key in store.list(""):
        assert value.encode() not in store.get(key)
    # rotation: a new vault version changes the pod template, so the pods roll
    root.secrets.kv.v2.create_or_update_secret(path=f"{ns}/db", secret={"password": value + "2"})
    rotated = await plat.apply_version(apply_input(s, key="rotate"))
    assert rotated.changed and rotated.secret_versions == {"DB_PASSWORD": "vault-v2"}
    tmpl = client.AppsV1Api(kmock_server.api_client()).read_namespaced_deployment("web-v1", ns)
    assert "vault-v2" in tmpl.spec.template.metadata.annotations["code.dev/secret-versions"]

    bad = spec("v2", ns, artifact={"image": "registry.example/web:v2",
                                   "secrets": {"X": f"vault:secret/data/{ns}/nope#password"}})  # fmt: skip
    with pytest.raises(SecretResolutionFailed, match="SecretNotFound") as info:
        await plat.apply_version(apply_input(bad))
    assert not info.value.retryable
    with pytest.raises(client.ApiException):  # nothing applied for v2
        client.AppsV1Api(kmock_server.api_client()).read_namespaced_deployment("web-v2", ns)


async def test_api_server_down_is_retryable() -> None:
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{free_port()}"
    plat = KubernetesPlatform(client.ApiClient(cfg))
    with pytest.raises(PlatformUnavailable, match="unreachable") as info:
        await plat.describe(describe("nowhere"))
    assert info.value.retryable


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="opt-in: set KUBECONFIG")
async def test_real_cluster_opt_in() -> None:  # pragma: no cover - needs a cluster
    from kubernetes import config

    ns = os.environ.get("CODE_TEST_NAMESPACE", "default")
    plat = KubernetesPlatform(config.new_client_from_config(), traffic_mode="replicas",
                              poll_interval=2)  # fmt: skip
    image = "nginxinc/nginx-unprivileged:1.27-alpine"  # non-root, listens on 8080
    v1 = spec("v1", ns, image=image, replicas=1, health_check={"path": "/", "timeout": "180s"})
    v2 = spec("v2", ns, image=image, replicas=1, health_check={"path": "/", "timeout": "180s"})
    try:
        assert (await plat.apply_version(apply_input(v1))).instances == 1
        assert not (await plat.apply_version(apply_input(v1, key="again"))).changed
        await plat.apply_version(apply_input(v2))
        await plat.set_traffic(traffic(ns, {"v1": 50, "v2": 50}))
        d = await plat.describe(describe(ns))
        assert d.versions == ["v1", "v2"] and d.weights == {"v1": 50, "v2": 50}
        await plat.set_traffic(traffic(ns, {"v1": 100}, "rb"))
    finally:
        for v in ("v2", "v1"):
            await plat._delete("Deployment", f"web-{v}", ns)
            await plat._delete("Service", f"web-{v}", ns)
        await plat._delete("Service", "web", ns)


@pytest.mark.parametrize(
    ("status", "error", "retryable", "text"),
    [
        (403, PlatformError, False, "check RBAC"),
        (401, PlatformError, False, "lack permission"),
        (503, PlatformUnavailable, True, "answered 503"),
        (429, PlatformUnavailable, True, "answered 429"),
    ],
)
async def test_api_errors_are_classified(
    kmock_server: KubeServer, ns: str, status: int, error: type, retryable: bool, text: str
) -> None:
    # a kmock reaction answers every request in this namespace with `status`
    kmock_server.emulator[kmock.namespace(ns)] << status
    plat = KubernetesPlatform(kmock_server.api_client(), poll_interval=0.05)
    with pytest.raises(error, match=text) as info:
        await plat.describe(describe(ns))
    assert info.value.retryable is retryable
    with pytest.raises(error):
        await plat.apply_version(apply_input(spec("v1", ns)))


async def test_from_settings_uses_kubeconfig_context(
    kmock_server: KubeServer,
    controller: FakeDeploymentController,
    ns: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": kmock_server.url}}],
                "users": [{"name": "tester", "user": {"token": "not-checked-by-kmock"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
                "current-context": "elsewhere",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    settings = Settings(
        state_dir=tmp_path, kube_context="kmock", kube_traffic_mode="replicas", kube_namespace=ns
    )
    plat = KubernetesPlatform.from_settings(settings, poll_interval=0.05)
    assert plat.traffic_mode == "replicas" and plat.default_namespace == ns
    s = spec("v1", ns).model_copy(update={"namespace": None})  # namespace from the settings
    assert (await plat.apply_version(apply_input(s))).changed
    assert (await plat.describe(describe(ns).model_copy(update={"namespace": None}))).exists
    assert plat.artifacts is not None and plat.artifacts.list("releases/web/prod/")


def test_render_manifests_passes_policy_with_spec_labels(ns: str) -> None:
    import rust_core
    from activities.platform.kubernetes import render_manifests
    from code_foundation.errors import SpecError

    s = spec("v1", ns, artifact={"image": "registry.example/web:1.0", "secrets": {"P": "env:P"}})
    text = render_manifests(s)
    assert rust_core.validate_manifests(text, required_labels=list(s.labels)) == []
    assert "secretKeyRef" in text
    with pytest.raises(SpecError, match="artifact.image"):
        render_manifests(
            spec("v1", ns).model_copy(
                update={
                    "artifact": s.artifact.model_copy(update={"image": None, "command": ["run"]})
                }
            )
        )


def test_from_settings_without_any_kube_config_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from code_foundation.errors import ConfigError

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no Kubernetes configuration"):
        KubernetesPlatform.from_settings(Settings(state_dir=tmp_path))

"""Named clusters of the embedded default: which local agent serves which cluster.

``codectl dev --clusters eu-1,us-1`` starts one agent per cluster and writes
``<state>/clusters.json`` (``{"clusters": {"eu-1": "http://127.0.0.1:P", ...}}``);
platform activities route a spec's ``cluster`` through :func:`agent_url`. No cluster
(or ``local``) is the one configured agent (``CODE_AGENT_URL``), as before. An unknown
cluster is a ``ConfigError`` naming the known ones.

For Kubernetes a target's cluster names a kube context (:func:`kube_settings`): each
context of the kubeconfig (``KUBECONFIG``, else ``~/.kube/config``) is its own API
server. No cluster (or ``local``, unless the kubeconfig has a context of that name) is
the worker's ``CODE_KUBE_CONTEXT`` (None: the current context, or in-cluster). Any other
name must be a context of the kubeconfig, else a ``ConfigError`` naming the known ones:
never silently the current context or the pod's own cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from code_foundation.errors import ConfigError

DEFAULT = "local"


def clusters_file(state_dir: Path) -> Path:
    return Path(state_dir) / "clusters.json"


def read_clusters(state_dir: Path) -> dict[str, str]:
    """Cluster name → agent URL (empty when the stack runs one agent)."""
    path = clusters_file(state_dir)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    got = doc.get("clusters") if isinstance(doc, dict) else None
    if not isinstance(got, dict):
        raise ConfigError(f"{path}: expected {{'clusters': {{name: agent URL}}}}")
    return {str(k): str(v) for k, v in got.items()}


def write_clusters(state_dir: Path, clusters: dict[str, str]) -> Path:
    """Atomically record the stack's clusters (written by ``codectl dev --clusters``)."""
    path = clusters_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"clusters": clusters}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def known_clusters(settings: Any) -> list[str]:
    """Every cluster a pipeline may name: ``local`` and the stack's named ones."""
    return sorted({DEFAULT, *read_clusters(settings.state_dir)})


def agent_url(settings: Any, cluster: str | None) -> str:
    """The agent serving ``cluster`` (None or ``local``: the configured agent)."""
    if cluster in (None, DEFAULT):
        return str(settings.agent_url)
    clusters = read_clusters(settings.state_dir)
    if cluster not in clusters:
        raise ConfigError(
            f"unknown cluster {cluster!r}: this stack has "
            f"{', '.join(sorted({DEFAULT, *clusters}))} (codectl dev --clusters NAME,...)"
        )
    return clusters[cluster]


# ---------------------------------------------------------------- Kubernetes contexts
def kubeconfig_path() -> Path | None:
    """The kubeconfig the ``kubernetes`` client reads: the first of ``KUBECONFIG``,
    else ``~/.kube/config``; None when there is none."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), None)
    path = Path(first).expanduser() if first else Path("~/.kube/config").expanduser()
    return path if path.is_file() else None


def kube_contexts(path: Path | None = None) -> list[str]:
    """The context names of the kubeconfig (empty: no kubeconfig)."""
    path = path or kubeconfig_path()
    if path is None:
        return []
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"kubeconfig {path} cannot be read: {exc}") from None
    items = doc.get("contexts") if isinstance(doc, dict) else None
    return sorted(
        str(c["name"]) for c in items or [] if isinstance(c, dict) and c.get("name") is not None
    )


def named_context(cluster: str | None, contexts: list[str]) -> str | None:
    """The kube context a Kubernetes target's ``cluster`` names (None: the default)."""
    if cluster is None or (cluster == DEFAULT and DEFAULT not in contexts):
        return None
    return cluster


def unknown_context(cluster: str, contexts: list[str]) -> str:
    where = kubeconfig_path()
    has = ", ".join(contexts) if contexts else "no contexts"
    return (
        f"unknown kube context {cluster!r}: the kubeconfig ({where or 'none found'}) has "
        f"{has} (KUBECONFIG / kubectl config get-contexts)"
    )


def kube_settings(settings: Any, cluster: str | None) -> Any:
    """``settings`` for the API server of ``cluster``'s kube context (the default one:
    unchanged); an unknown context is a ``ConfigError`` naming the known ones."""
    contexts = kube_contexts()
    ctx = named_context(cluster, contexts)
    if ctx is None:
        return settings
    if ctx not in contexts:
        raise ConfigError(unknown_context(ctx, contexts))
    return settings.model_copy(update={"kube_context": ctx})

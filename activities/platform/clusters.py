"""Named clusters of the embedded default: which local agent serves which cluster.

``codectl dev --clusters eu-1,us-1`` starts one agent per cluster and writes
``<state>/clusters.json`` (``{"clusters": {"eu-1": "http://127.0.0.1:P", ...}}``);
platform activities route a spec's ``cluster`` through :func:`agent_url`. No cluster
(or ``local``) is the one configured agent (``CODE_AGENT_URL``), as before. For
Kubernetes a cluster names a kube context. An unknown cluster is a ``ConfigError``
naming the known ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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

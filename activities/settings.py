"""The engine's effective configuration: one pydantic-settings model read from
``CODE_*`` environment variables and an optional TOML/YAML config file
(``CODE_CONFIG``). Secrets are ``SecretStr`` and masked by ``masked()``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    return Path(os.environ.get("CODE_STATE_DIR", Path.home() / ".local" / "state" / "code"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODE_", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)
    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    task_queue: str = "code-engine"
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    # platform
    platform: Literal["local", "kubernetes"] = "local"
    agent_url: str = "http://127.0.0.1:8270"
    kube_context: str | None = None
    kube_namespace: str | None = None  # default: the environment name
    kube_traffic_mode: Literal["gateway", "replicas"] = "gateway"  # replicas = approximate
    kube_gateway_name: str = "code-gateway"
    kube_gateway_namespace: str | None = None
    # metrics
    metrics_backend: Literal["router", "prometheus"] = "router"
    prometheus_url: str | None = None
    prometheus_token: SecretStr | None = None
    # ledger
    ledger_url: str | None = None
    # artifacts
    artifact_store: Literal["local", "s3"] = "local"
    artifact_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str = "code-artifacts"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    # secrets
    secret_store: Literal["env", "vault"] = "env"
    vault_url: str | None = None
    vault_token: SecretStr | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None

    def effective_ledger_url(self) -> str:
        return self.ledger_url or f"sqlite:///{self.state_dir / 'ledger.db'}"

    def effective_artifact_dir(self) -> Path:
        return self.artifact_dir or self.state_dir / "artifacts"

    def masked(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        out["ledger_url"] = self.effective_ledger_url()
        return out

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
    # extra headers, e.g. X-Scope-OrgID (JSON in CODE_PROMETHEUS_HEADERS)
    prometheus_headers: dict[str, str] = Field(default_factory=dict)
    prometheus_ca_file: Path | None = None
    prometheus_insecure: bool = False  # skip TLS verification (never in production)
    prometheus_timeout: float = 10.0
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
    secret_store: Literal["env", "vault"] = "env"  # noqa: S105 - a store kind, not a secret
    vault_url: str | None = None
    vault_token: SecretStr | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    # observability: tracing off unless an OTLP/HTTP endpoint is set; metrics off unless a port is set
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318 (/v1/traces is appended)
    otel_service_name: str = "code-worker"
    # worker /metrics: domain metrics + Temporal SDK metrics (9464 in the dev stack)
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a pod
    # Temporal SDK runtime metrics (loopback); default metrics_port + 1
    sdk_metrics_port: int | None = None
    # payload encryption: a JSON keyring file or a Vault KV v2 path holding one
    codec_keyring: Path | None = None
    # e.g. kv/data/code/codec (KV v2 mount "kv", secret "code/codec")
    codec_vault_path: str | None = None
    # the Web UI origin allowed by the codec server (CORS)
    codec_server_origin: str = "http://127.0.0.1:8233"

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

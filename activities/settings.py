"""The engine's effective configuration: one pydantic-settings model read from
``CODE_*`` environment variables (first) and an optional TOML/YAML settings file
(``CODE_CONFIG``). Secrets are ``SecretStr`` and masked by ``masked()``.

``allowed_targets`` governs every outbound probe, load, soak, hook and Web-provider
call (see :mod:`code_foundation.targets`): loopback only by default;
``CODE_ALLOWED_TARGETS`` takes comma-separated entries or a JSON list. HTTPS targets
are verified against ``tls_ca_file`` (else the system roots), present
``tls_client_cert``/``tls_client_key`` when set, and skip verification only when
``tls_insecure`` is asked for. :meth:`Settings.apply_targets` makes the allow-list
the process-wide one (the worker and ``codectl`` call it at start)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from code_foundation import targets
from workflows.notify_spec import Sink

CONFIG_ENV = "CODE_CONFIG"


def default_state_dir() -> Path:
    return Path(os.environ.get("CODE_STATE_DIR", Path.home() / ".local" / "state" / "code"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODE_", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)
    # where traffic may go: loopback, IPs, CIDRs, host names, *.suffix patterns
    allowed_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(targets.DEFAULT_ALLOWED)
    )
    # HTTPS for probes, load and hooks
    tls_ca_file: Path | None = None
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    tls_insecure: bool = False  # skip certificate verification: only when asked, never default
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
    metrics_tls_cert: Path | None = None  # serve /metrics over HTTPS (TLS 1.2+, 1.3 preferred)
    metrics_tls_key: Path | None = None  # the certificate's key (default: in the cert file)
    # Temporal SDK runtime metrics (loopback); default metrics_port + 1
    sdk_metrics_port: int | None = None
    # payload encryption: a JSON keyring file or a Vault KV v2 path holding one
    codec_keyring: Path | None = None
    # e.g. kv/data/code/codec (KV v2 mount "kv", secret "code/codec")
    codec_vault_path: str | None = None
    # the Web UI origin allowed by the codec server (CORS)
    codec_server_origin: str = "http://127.0.0.1:8233"
    # notification sinks specs refer to by name (JSON list in CODE_NOTIFY_SINKS; docs/hooks.md)
    notify_sinks: list[Sink] = Field(default_factory=list)
    # folder of analysis templates specs refer to by name (docs/hooks.md)
    analysis_templates_dir: Path | None = None
    # identity (OIDC): enforcement is on in every workflow when issuer, audience and policy are set
    identity_issuer: str | None = None  # e.g. http://127.0.0.1:8290 (the dev issuer)
    identity_audience: str | None = None  # the client id tokens are issued to, e.g. codectl
    identity_policy: Path | None = None  # the access policy YAML (codectl policy check FILE)
    identity_skew_seconds: int = 60  # leeway on exp/nbf/iat
    identity_jwks_ttl: float = 300.0  # seconds a fetched JWKS is reused before re-fetching
    identity_dev: bool = False  # dev mode: `codectl login --as NAME` against a local issuer

    @model_validator(mode="after")
    def _dev_identity(self) -> Settings:
        """Identity dev mode fills in the local dev issuer (``codectl dev`` starts it)."""
        if self.identity_dev:
            self.identity_issuer = self.identity_issuer or "http://127.0.0.1:8290"
            self.identity_audience = self.identity_audience or "codectl"
            self.identity_policy = self.identity_policy or self.state_dir / "identity/policy.yaml"
        return self

    @field_validator("allowed_targets", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> list[str]:
        if v is None:
            return list(targets.DEFAULT_ALLOWED)
        got = list(targets.parse_entries(v))
        bad = [p for p in (targets.entry_problem(e) for e in got) if p]
        if bad:
            raise ValueError(f"{targets.SETTING}: " + "; ".join(bad))
        return got or list(targets.DEFAULT_ALLOWED)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        path = os.environ.get(CONFIG_ENV)
        if path:
            if path.endswith((".yaml", ".yml")):
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
            else:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def apply_targets(self) -> Settings:
        """Make ``allowed_targets`` the process-wide allow-list; returns self."""
        targets.configure(self.allowed_targets)
        return self

    def tls_verify(self) -> Any:
        """httpx's ``verify``: False when insecure, an SSLContext with the CA file
        (and client certificate), else True (the system roots)."""
        if self.tls_insecure:
            return False
        if not (self.tls_ca_file or self.tls_client_cert):
            return True
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        if self.tls_client_cert:
            ctx.load_cert_chain(
                str(self.tls_client_cert),
                str(self.tls_client_key) if self.tls_client_key else None,
            )
        return ctx

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

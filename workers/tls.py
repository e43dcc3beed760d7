"""TLS / mTLS options for the Temporal connection, from Settings; the server-side TLS
context of the servers CODE runs (TLS 1.2+, 1.3 preferred)."""

from __future__ import annotations

import ssl
from pathlib import Path

from temporalio.service import TLSConfig

from activities.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    if not settings.temporal_tls:
        return False
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The TLS context of a server CODE runs (the codec server): TLS 1.2 at least, 1.3
    preferred (OpenSSL negotiates the highest both sides speak)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx

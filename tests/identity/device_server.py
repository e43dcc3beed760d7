"""A small real OIDC issuer with the device authorization grant (RFC 8628) for the login
tests: oidc-provider-mock (the dev issuer) has no ``device_authorization_endpoint``.

Real HTTP on a loopback port (``http.server`` in a thread): discovery, a JWKS with the
public half of an RSA key generated per server, ``/device`` (device authorization),
``/token`` (polling: ``authorization_pending`` until the user approves, ``slow_down`` when
asked, ``access_denied`` after a denial) and ``/approve`` / ``/deny`` (what the user does in
the browser, here a POST with the user code). Tokens are real RS256 JWTs signed with that
key, so they verify through CODE's own verification (:mod:`workflows.identity`)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers import free_port

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceIssuer:
    def __init__(
        self,
        *,
        sub: str = "alice",
        groups: list[str] | None = None,
        interval: int = 1,
        expires_in: int = 600,
        slow_down_at: set[int] | None = None,
        auto_approve_after: int | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        self.claims: dict[str, Any] = {
            "sub": sub,
            "email": f"{sub}@example.com",
            "groups": groups or ["release-managers"],
            "amr": ["pwd", "mfa"],
        }
        self.interval, self.expires_in = interval, expires_in
        self.slow_down_at = slow_down_at or set()  # poll numbers answered with slow_down
        self.auto_approve_after = auto_approve_after  # approve once this many polls came
        self.codes: dict[str, dict[str, Any]] = {}  # device_code -> {user_code, state, client}
        self.polls: list[float] = []  # monotonic time of every token poll
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> DeviceIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(*issuer.get(self.path))

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                self._send(*issuer.post(self.path, form))

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------ endpoints
    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/.well-known/openid-configuration":
            return 200, {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks",
                "token_endpoint": f"{self.url}/token",
                "device_authorization_endpoint": f"{self.url}/device",
                "grant_types_supported": [GRANT],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if path == "/jwks":
            pub = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return 200, {"keys": [{**pub, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        return 404, {"error": "not_found"}

    def post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path == "/device":
                if not form.get("client_id"):
                    return 400, {"error": "invalid_client"}
                device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
                self.codes[device_code] = {
                    "user_code": user_code,
                    "state": "pending",
                    "client": form["client_id"],
                }
                return 200, {
                    "device_code": device_code,
                    "user_code": user_code,
                    "verification_uri": f"{self.url}/activate",
                    "verification_uri_complete": f"{self.url}/activate?user_code={user_code}",
                    "expires_in": self.expires_in,
                    "interval": self.interval,
                }
            if path in ("/approve", "/deny"):
                for entry in self.codes.values():
                    if entry["user_code"] == form.get("user_code"):
                        entry["state"] = "approved" if path == "/approve" else "denied"
                        return 200, {}
                return 404, {"error": "unknown user code"}
            if path == "/token":
                return self._token(form)
        return 404, {"error": "not_found"}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != GRANT:
            return 400, {"error": "unsupported_grant_type"}
        entry = self.codes.get(form.get("device_code", ""))
        if entry is None or entry["client"] != form.get("client_id"):
            return 400, {"error": "invalid_grant"}
        self.polls.append(time.monotonic())
        n = len(self.polls)
        if self.auto_approve_after is not None and n >= self.auto_approve_after:
            entry["state"] = entry["state"] if entry["state"] != "pending" else "approved"
        if n in self.slow_down_at:
            return 400, {"error": "slow_down"}
        if entry["state"] == "pending":
            return 400, {"error": "authorization_pending"}
        if entry["state"] == "denied":
            return 400, {"error": "access_denied"}
        if entry["state"] == "used":
            return 400, {"error": "invalid_grant"}
        entry["state"] = "used"
        return 200, {
            "access_token": self.sign({"aud": "api"}),
            "id_token": self.sign({"aud": entry["client"]}),
            "token_type": "Bearer",
            "expires_in": 600,
        }

    def sign(self, extra: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {**self.claims, "iss": self.url, "iat": now, "exp": now + 600, **extra}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def user(self, action: str, user_code: str) -> None:
        """The user's browser: approve or deny ``user_code`` (a real HTTP POST)."""
        import httpx

        httpx.post(f"{self.url}/{action}", data={"user_code": user_code}).raise_for_status()

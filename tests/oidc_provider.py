"""A real OpenID Connect provider on a loopback port, for testing Google sign-in end to end.

It speaks the parts of OpenID Connect that Pipetower's Google sign-in uses,
over real HTTP: discovery, the authorization endpoint (which consents at once
for `provider.identity` and redirects back with a code and the state), the
token endpoint (client authentication, single-use codes bound to their
redirect URI, PKCE S256, an RS256-signed ID token), the JWKS and userinfo.

Knobs for bad-input tests:
- `tamper_id_token = True`: the token endpoint changes the ID token's payload
  (the email address) after signing, so its signature no longer matches;
- `sign_with_other_key = True`: the ID token is signed by a key that is not in
  the JWKS.

Every request is kept in `requests_seen` as (method, path, form fields).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    nonce: str
    claims: dict[str, Any]
    used: bool = False


@dataclass
class OIDCProvider:
    client_id: str = "pipetower-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # The person who "signs in at Google" next (auto-consent).
    identity: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "110248495921238986420",
            "email": "grace@example.com",
            "email_verified": True,
            "name": "Grace Hopper",
            "given_name": "Grace",
            "family_name": "Hopper",
            "picture": "https://example.com/grace.png",
            "locale": "en",
            "hd": "example.com",
        }
    )
    tamper_id_token: bool = False
    sign_with_other_key: bool = False

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self._grants: dict[str, _Grant] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self.requests_seen: list[tuple[str, str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() the provider first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OIDCProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- documents -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": sorted({"iss", "aud", "exp", "iat", *self.identity}),
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def id_token(self, claims: dict[str, Any], nonce: str = "") -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + 3600,
        }
        if nonce:
            payload["nonce"] = nonce
        key = self._other_key if self.sign_with_other_key else self._key
        token = jwt.encode(payload, key, algorithm="RS256", headers={"kid": self.kid})
        if self.tamper_id_token:
            header, _, signature = token.split(".")
            forged = {**payload, "email": "mallory@example.com", "email_verified": True}
            token = ".".join([header, _b64url(json.dumps(forged).encode()), signature])
        return token

    # --- endpoints -----------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return _json(400, {"error": "invalid_request"})
        if query.get("response_type") != "code":
            return _redirect(redirect_uri, error="unsupported_response_type", state=query)
        if "openid" not in query.get("scope", "").split():
            return _redirect(redirect_uri, error="invalid_scope", state=query)
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            code_challenge=query.get("code_challenge", ""),
            code_challenge_method=query.get("code_challenge_method", ""),
            nonce=query.get("nonce", ""),
            claims=dict(self.identity),
        )
        return _redirect(redirect_uri, code=code, state=query)

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, str], bytes]:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        grant = self._grants.get(form.get("code", ""))
        if grant is None or grant.used or grant.redirect_uri != form.get("redirect_uri"):
            return _json(400, {"error": "invalid_grant"})
        grant.used = True
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            expected = _b64url(hashlib.sha256(verifier.encode()).digest())
            if grant.code_challenge_method != "S256" or expected != grant.code_challenge:
                return _json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        access_token = secrets.token_urlsafe(24)
        self._access_tokens[access_token] = grant.claims
        return _json(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid email profile",
                "id_token": self.id_token(grant.claims, nonce=grant.nonce),
            },
        )

    def userinfo(self, authorization: str) -> tuple[int, dict[str, str], bytes]:
        scheme, _, token = authorization.partition(" ")
        claims = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if claims is None:
            return _json(401, {"error": "invalid_token"})
        return _json(200, claims)


class _Handler(BaseHTTPRequestHandler):
    owner: OIDCProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.owner.requests_seen.append(("GET", url.path, query))
        if url.path == "/.well-known/openid-configuration":
            self._send(*_json(200, self.owner.discovery()))
        elif url.path == "/jwks":
            self._send(*_json(200, self.owner.jwks()))
        elif url.path == "/authorize":
            self._send(*self.owner.authorize(query))
        elif url.path == "/userinfo":
            self._send(*self.owner.userinfo(self.headers.get("Authorization", "")))
        else:
            self._send(*_json(404, {"error": "not_found"}))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        self.owner.requests_seen.append(("POST", url.path, form))
        if url.path == "/token":
            self._send(*self.owner.token(form, self.headers.get("Authorization", "")))
        else:
            self._send(*_json(404, {"error": "not_found"}))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _json(status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
        (json.dumps(data).encode()),
    )


def _redirect(
    redirect_uri: str, *, state: dict[str, str], **params: str
) -> tuple[int, dict[str, str], bytes]:
    if "state" in state:
        params["state"] = state["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return 302, {"Location": f"{redirect_uri}{separator}{urlencode(params)}"}, b""


@contextmanager
def running_provider(**kwargs: Any) -> Iterator[OIDCProvider]:
    provider = OIDCProvider(**kwargs).start()
    try:
        yield provider
    finally:
        provider.stop()

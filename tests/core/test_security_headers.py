"""Security headers in every mode, and production mode's HTTPS rules.

Production settings are read once at start-up, so production is tested in a
subprocess started with PIPETOWER_ENV=production, as an operator would run it.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import re
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client
from django.urls import reverse

from pipetower.accounts.models import User
from pipetower.teams.models import Team
from tests.accounts.mfa.helpers import reauthenticate, sign_in_with_password
from tests.core._ops import embedded_env, free_port, pipetower_argv, run_pipetower, wait_until

MASTER_KEY = "uWp3yVd5bq3Pq9h8oJ0mB4a1nE2qT7xK6cLrZsYvF0g"


class _Inline(HTMLParser):
    """Collects what a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event handler attribute")
        if "style" in named:
            self.problems.append(f"<{tag} style=...> inline style")
        if tag == "style":
            self.problems.append("<style> element")
        for name in ("href", "src", "action"):
            if (named.get(name) or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:...>")
        if tag == "script":
            self._in_script = named

    def handle_data(self, data: str) -> None:
        if self._in_script is not None and data.strip():
            kind = (self._in_script.get("type") or "").lower()
            if "src" not in self._in_script and kind != "application/json":
                self.problems.append(f"inline <script>: {data.strip()[:60]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None


def inline_code(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.problems


def _csp(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    policy = {}
    for part in header.split(";"):
        name, *values = part.split()
        policy[name] = values
    return policy


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_that_allows_no_inline_script(
    client: Client, user: User, team: Team
) -> None:
    pages = ["/", reverse("account_login"), reverse("account_signup")]
    public = [client.get(url) for url in pages]
    sign_in_with_password(client, user.email)
    reauthenticate(client)
    signed_in = [
        client.get(url)
        for url in (
            reverse("teams:list"),
            reverse("teams:detail", kwargs={"team_slug": team.slug}),
            reverse("teams:settings", kwargs={"team_slug": team.slug}),
            reverse("teams:members", kwargs={"team_slug": team.slug}),
            reverse("audit:activity", kwargs={"team_slug": team.slug}),
            reverse("servers:list", kwargs={"team_slug": team.slug}),
            reverse("actions:list", kwargs={"team_slug": team.slug}),
            reverse("runs:list", kwargs={"team_slug": team.slug}),
            reverse("tokens:list"),
            reverse("accounts:security"),
            reverse("accounts:profile"),
            reverse("mfa_index"),
            reverse("mfa_activate_totp"),
            reverse("mfa_add_webauthn"),
            "/api/v1/docs",
        )
    ]

    for response in public + signed_in:
        assert response.status_code == 200, response.request["PATH_INFO"]
        policy = _csp(response)
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]
        problems = inline_code(response.content.decode())
        assert problems == [], (response.request["PATH_INFO"], problems)


@pytest.mark.django_db
def test_the_admin_works_under_the_same_policy(client: Client, settings: Any) -> None:
    settings.ADMIN_REQUIRE_2FA = False
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True, is_superuser=True)
    sign_in_with_password(client, staff.email)

    for url in (reverse("admin:index"), reverse("admin:accounts_user_changelist")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Content-Security-Policy" in response
        assert inline_code(response.content.decode()) == [], url


@pytest.mark.django_db
def test_frames_sniffing_referrers_and_device_features_are_locked_down(client: Client) -> None:
    response = client.get(reverse("account_login"))

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    cookie = response.cookies["csrftoken"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


@pytest.mark.django_db
def test_x_forwarded_proto_is_believed_only_from_a_trusted_proxy(
    client: Client, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXIES = ["10.9.9.9"]

    from_anyone = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    from_proxy = client.get(
        "/accounts/login/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="10.9.9.9"
    )

    assert from_anyone.status_code == 301
    assert from_anyone["Location"].startswith("https://")
    assert from_proxy.status_code == 200


# --- production mode, in a real process -------------------------------------

PRODUCTION_PROBE = textwrap.dedent(
    """
    import json, os
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from pipetower.accounts.models import User
    from allauth.account.models import EmailAddress

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("ops@example.com", "plum tractor violet harbour 93", name="Ops")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client = Client()
    plain = client.get("/accounts/login/")
    health = client.get("/healthz")
    page = client.get("/accounts/login/", secure=True)
    signed = client.post(
        "/accounts/login/",
        {"login": "ops@example.com", "password": "plum tractor violet harbour 93"},
        secure=True,
    )

    def cookie(response, name):
        c = response.cookies[name]
        return {"secure": bool(c["secure"]), "httponly": bool(c["httponly"]),
                "samesite": c["samesite"]}

    print(json.dumps({
        "plain_status": plain.status_code,
        "plain_location": plain.get("Location"),
        "health_status": health.status_code,
        "status": page.status_code,
        "headers": dict(page.headers),
        "csrf_cookie": cookie(page, "csrftoken"),
        "signed_status": signed.status_code,
        "session_cookie": cookie(signed, "sessionid"),
    }))
    """
)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("production")
    env = embedded_env(
        data,
        PIPETOWER_ENV="production",
        SECRET_KEY="a-production-secret-key-for-this-test-only-0123456789",
        PIPETOWER_MASTER_KEYS=MASTER_KEY,
        PIPETOWER_ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="pipetower.config.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.embedded_only
def test_production_redirects_plain_http_to_https(production: dict[str, Any]) -> None:
    assert production["plain_status"] == 301
    assert production["plain_location"] == "https://testserver/accounts/login/"


@pytest.mark.embedded_only
def test_production_keeps_the_health_check_reachable_over_http(
    production: dict[str, Any],
) -> None:
    assert production["health_status"] in (200, 503)


@pytest.mark.embedded_only
def test_production_sends_hsts_csp_and_frame_denial(production: dict[str, Any]) -> None:
    headers = production["headers"]
    assert production["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.embedded_only
def test_production_cookies_are_secure_http_only_and_same_site(
    production: dict[str, Any],
) -> None:
    assert production["signed_status"] == 302
    for name in ("csrf_cookie", "session_cookie"):
        assert production[name] == {"secure": True, "httponly": True, "samesite": "Lax"}, name


@pytest.mark.embedded_only
def test_production_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    env = embedded_env(tmp_path, PIPETOWER_ENV="production")

    done = run_pipetower("check", env=env, timeout=60)

    assert done.returncode != 0
    assert "Production mode needs these secrets in the environment" in done.stderr + done.stdout
    assert "SECRET_KEY" in done.stderr + done.stdout


# --- serving HTTPS directly ---------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.embedded_only
def test_web_serves_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    env = embedded_env(tmp_path / "data")
    process = subprocess.Popen(
        pipetower_argv("web", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    context = ssl.create_default_context(cafile=str(cert))
    try:

        def fetch() -> Any:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
                ) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())
            except OSError:
                return None

        status, body = wait_until(fetch, timeout=60, what="the HTTPS health check")
        assert status in (200, 503)
        assert "database" in body
        with pytest.raises((OSError, http.client.HTTPException)):  # no plain HTTP on that port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.embedded_only
def test_web_refuses_a_key_that_is_not_pkcs8_with_a_way_to_fix_it(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    legacy = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key.write_bytes(legacy)

    done = run_pipetower(
        "web", "--tls-cert", str(cert), "--tls-key", str(key), env=embedded_env(tmp_path / "d")
    )

    assert done.returncode != 0
    assert "must be an unencrypted PKCS#8 key" in done.stderr
    assert "openssl pkcs8 -topk8" in done.stderr


@pytest.mark.embedded_only
def test_web_needs_both_the_certificate_and_the_key(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)

    done = run_pipetower("web", "--tls-cert", str(cert), env=embedded_env(tmp_path / "d"))

    assert done.returncode != 0
    assert "give both --tls-cert and --tls-key" in done.stderr
    assert re.search(r"Traceback", done.stderr) is None

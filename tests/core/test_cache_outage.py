"""A cache outage degrades, never 500s: a real web process on a Redis cache of its own,
and that Redis stopped under it (API requests, the sign-in page, a sign-in)."""

from __future__ import annotations

import http.client
import http.cookiejar
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from tests.core._ops import free_port, wait_until
from tests.factories import PASSWORD, UserFactory
from tests.webproc import running_web, shared_database_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@dataclass
class Web:
    port: int
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _redis_ping(port: int) -> bool:
    try:
        conn = http.client.socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return False
    with conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _redis_ping(port), timeout=20, what="redis-server")
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def web(transactional_db: None, redis_port: tuple[int, subprocess.Popen[bytes]]) -> Iterator[Web]:
    """A real `pipetower web` (one process) whose cache is `redis_port`'s Redis."""
    env = shared_database_env(CACHE_URL=f"redis://127.0.0.1:{redis_port[0]}/0")
    log = Path(django_settings.DATA_DIR) / "web-outage.log"
    with running_web(env, workers=1, log=log) as base:
        yield Web(int(base.rsplit(":", 1)[1]), log)


def _api(web: Web, token: str) -> int:
    request = urllib.request.Request(
        web.url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _sign_in(web: Web, email: str) -> tuple[int, int, str]:
    """(status of the sign-in page, status of the sign-in post, where it ended)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    try:
        with opener.open(web.url("/accounts/login/"), timeout=30) as page:
            page_status, html = page.status, page.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, 0, ""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token, html[:500]
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token[1], "login": email, "password": PASSWORD}
    ).encode()
    post = urllib.request.Request(
        web.url("/accounts/login/"), data=body, headers={"Referer": web.url("/accounts/login/")}
    )
    try:
        with opener.open(post, timeout=30) as answer:
            return page_status, answer.status, answer.url
    except urllib.error.HTTPError as error:
        return page_status, error.code, ""


def test_with_the_cache_down_api_requests_and_sign_ins_still_work(
    web: Web, redis_port: tuple[int, subprocess.Popen[bytes]]
) -> None:
    user = UserFactory(email="outage@example.com")
    _token, raw = api_token_create(user=user, name="outage", scope=ApiToken.Scope.READ)
    assert _api(web, raw) == 200
    assert _sign_in(web, user.email)[1] == 200

    _port, redis = redis_port
    redis.terminate()
    redis.wait(timeout=10)

    assert [_api(web, raw) for _ in range(3)] == [200, 200, 200]
    page, signed_in, landed = _sign_in(web, user.email)
    assert page == 200
    assert signed_in == 200
    assert "/accounts/login/" not in landed  # signed in and sent on, not the form again
    assert _api(web, "ptk_wrong") == 401  # a bad token is still refused, not a 500
    log = web.log.read_text()
    assert "does not answer" in log
    assert "Internal Server Error" not in log

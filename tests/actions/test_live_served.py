"""Live output through the real served app: a `pipetower web` process on a loopback port.

Many followers (page streams and API long-polls, spread over two web processes)
all receive every line; followers held open hold no request thread, so /healthz
answers while they wait.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from pipetower.actions import services
from pipetower.actions.models import TargetStatus
from pipetower.api.services import api_token_create
from tests import webproc
from tests.actions.conftest import running_run
from tests.core._ops import get_json
from tests.webproc import THREADS

pytestmark = pytest.mark.django_db(transaction=True)
web = webproc.web  # a real `pipetower web` process (fixture)


def _session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def _stream_follower(url: str, cookie: str, lines: list[str], done: threading.Event) -> None:
    """The run page's way: one Server-Sent Events stream until the run ends."""
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        for raw in answer:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: end"):
                break
            if line.startswith("data: "):
                lines += [c["data"] for c in json.loads(line[6:]).get("chunks", [])]
    done.set()


def _poll_follower(
    url: str, token: str, target_id: int, lines: list[str], done: threading.Event
) -> None:
    """`pipetower run --follow`'s way: the API's changes?wait= long-poll."""
    revision, seq = 0, 0
    while True:
        request = urllib.request.Request(
            f"{url}?rev={revision}&after={target_id}:{seq}&wait=20",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = json.loads(answer.read())
        revision = body["revision"]
        for chunk in body["chunks"]:
            if chunk["seq"] > seq:
                seq = chunk["seq"]
                lines.append(chunk["data"])
        if body["run"]["finished"] and not body["more"]:
            break
    done.set()


def test_many_followers_through_the_served_app_all_receive_every_line(web, team, user):
    run, target = running_run(team, user)
    cookie = _session_cookie(user)
    token = api_token_create(user=user, name="follow", scope="read")[1]
    page_url = f"{web}/teams/{team.slug}/runs/{run.pk}/live?rev=0&after={target.pk}:0&stream=1"
    api_url = f"{web}/api/v1/teams/{team.slug}/runs/{run.pk}/changes"
    followers: list[tuple[list[str], threading.Event]] = []
    threads = []
    for n in range(40):
        lines: list[str] = []
        done = threading.Event()
        followers.append((lines, done))
        if n % 4 == 3:
            args: tuple[Any, ...] = (api_url, token, target.pk, lines, done)
            threads.append(threading.Thread(target=_poll_follower, args=args, daemon=True))
        else:
            args = (page_url, cookie, lines, done)
            threads.append(threading.Thread(target=_stream_follower, args=args, daemon=True))
    for thread in threads:
        thread.start()
    expected = []
    for n in range(60):
        text = f"line {n}\n"
        expected.append(text)
        services.output_chunks_store(target_id=target.pk, chunks=[("stdout", text)])
        if n % 10 == 0:
            threading.Event().wait(0.05)  # bursts and pauses, like a real script
    services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED, exit_code=0)
    for thread in threads:
        thread.join(timeout=60)
    for index, (lines, done) in enumerate(followers):
        assert done.is_set(), f"follower {index} did not see the run end"
        assert lines == expected, f"follower {index} missed or repeated lines"


def test_followers_held_open_do_not_block_healthz(web, team, user):
    """More waiting followers than request threads: /healthz still answers, before any
    of them (with a thread per follower it would queue behind them for 20 s)."""
    run, target = running_run(team, user)
    cookie = _session_cookie(user)
    token = api_token_create(user=user, name="follow", scope="read")[1]
    answered: list[str] = []
    lock = threading.Lock()

    def hold(url: str, headers: dict[str, str]) -> None:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=60
        ) as answer:
            answer.read()
        with lock:
            answered.append("follower")

    holders = []
    for n in range(4 * THREADS * 2):
        if n % 2:
            url = f"{web}/api/v1/teams/{team.slug}/runs/{run.pk}/changes?rev=0&wait=20"
            headers = {"Authorization": f"Bearer {token}"}
        else:
            url = f"{web}/teams/{team.slug}/runs/{run.pk}/live?rev=0&wait=20"
            headers = {"Cookie": cookie}
        holders.append(threading.Thread(target=hold, args=(url, headers), daemon=True))
    for thread in holders:
        thread.start()
    threading.Event().wait(2.0)  # let every follower reach the server and wait there
    health = get_json(f"{web}/healthz", timeout=15)
    with lock:
        answered.append("healthz")
    assert health is not None and health["database"]["status"] == "ok"
    services.run_target_finish(target_id=target.pk, status=TargetStatus.SUCCEEDED, exit_code=0)
    for thread in holders:
        thread.join(timeout=60)
    assert answered[0] == "healthz", answered
    assert answered.count("follower") == len(holders)

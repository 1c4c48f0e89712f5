"""A new team's first run, end to end, as a person does it in a browser.

Three servers (real sshd processes) are added through the form, tested, and
their host keys confirmed and pinned; an action with a parameter is created
through the form and started on all three from the launch form. A real
`pipetower worker` process, on the same test database and broker as this
live server (the embedded filesystem queue, or Redis when BROKER_URL is set),
runs it; the run page shows each server's output while the run is still
going, then the result of every server.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import Page, expect

from pipetower.actions.models import Run, RunStatus
from pipetower.config.celery import app
from pipetower.core.models import WorkerHeartbeat
from tests.core._ops import database_url, embedded_env, pipetower_argv, wait_until
from tests.factories import PASSWORD
from tests.sshd import SshdServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

WORKER_READY_TIMEOUT = 60
RUN_TIMEOUT_MS = 30_000
GUEST = "Grace Hopper"
# Each line is followed by a pause, so the page must show a line while the run
# is still going, and show the next one when it comes, without a reload.
SCRIPT = """\
echo "Hello, $PT_PARAM_NAME, from $PT_SERVER_NAME"
sleep 3
echo "step 2 of 3"
sleep 2
echo "step 3 of 3: done"
"""


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    hostname: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        """A ready worker records a heartbeat under its name (the worker_ready signal)."""

        def ready() -> bool:
            assert self.process.poll() is None, f"The worker exited:\n{self.output()}"
            return WorkerHeartbeat.objects.filter(hostname=self.hostname).exists()

        try:
            wait_until(ready, timeout=WORKER_READY_TIMEOUT, what="the worker to be ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output()}") from None


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    """`pipetower worker` on the default queue, configured like this live server: same
    database (DATABASE_URL), broker, data directory and encryption keys. Tasks go to
    the broker instead of running inline, as in a deployment."""
    app.control.purge()  # what earlier tests queued and no worker took
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    hostname = f"journey-{uuid.uuid4().hex[:8]}@localhost"
    env = embedded_env(
        settings.DATA_DIR,
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        PIPETOWER_MASTER_KEYS=",".join(settings.MASTER_KEYS),
        **({"BROKER_URL": settings.BROKER_URL} if settings.BROKER_URL else {}),
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pipetower_argv("worker", "--concurrency", "1", "--hostname", hostname),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield WorkerProcess(process, hostname, log)
    finally:
        app.conf.task_always_eager = eager
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    banner = page.get_by_role("region", name="Cookies on Pipetower")
    if banner.count():  # a first visit asks about cookies; answer it like a visitor would
        banner.get_by_role("button", name="Reject all").click()
        expect(banner).to_be_hidden()
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("navigation", name="Account")).to_be_visible()


def add_and_pin_server(page: Page, *, name: str, tags: str, sshd: SshdServer) -> None:
    """From the server list: add a server, test it, confirm its fingerprint, log in."""
    first = page.get_by_role("link", name="Add your first server")
    (first if first.count() else page.get_by_role("link", name="Add server")).click()
    expect(page.get_by_label("Name")).to_be_focused()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Host").fill(sshd.host)
    page.get_by_label("Port").fill(str(sshd.port))
    page.get_by_label("SSH user").fill(sshd.user)
    page.get_by_label("Tags").fill(tags)
    page.get_by_label("The team's SSH key").check()
    page.get_by_role("button", name="Add server").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".fingerprint")).to_contain_text(sshd.fingerprint)
    page.get_by_role("button", name="Confirm and pin this key").click()
    expect(page.get_by_text(f"Pinned host key {sshd.fingerprint}")).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Logged in to").first).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()


def test_a_new_team_adds_servers_creates_an_action_and_watches_its_first_run_live(
    page: Page,
    user,
    team,
    sshd_fleet: Callable[..., list[SshdServer]],
    worker: WorkerProcess,
    screenshot_dir: Path,
) -> None:
    started = time.monotonic()
    hosts = sshd_fleet(3)
    sign_in(page, user.email)

    # The empty server list offers to create the team's key (a GET creates
    # nothing), then shows its public key; it goes on every server.
    page.goto(f"/teams/{team.slug}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    page.get_by_role("button", name="Create the team key").click()
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    public_key = page.locator(".key-line").first.inner_text().strip()
    assert public_key.startswith("ssh-ed25519 ")
    for host in hosts:
        host.authorize(public_key)

    servers = {"db-1": "db", "web-1": "web, eu", "web-2": "web"}
    for (name, tags), host in zip(servers.items(), hosts, strict=True):
        add_and_pin_server(page, name=name, tags=tags, sshd=host)
    expect(page.get_by_role("table").get_by_text("Pinned", exact=True)).to_have_count(3)

    # An action whose script greets a name given at launch.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Actions").click()
    page.get_by_role("link", name="Create the first action").click()
    page.locator("#field-name").get_by_label("Name").fill("Greet")
    page.get_by_label(re.compile(r"^Script")).fill(SCRIPT)
    parameter = page.get_by_role("group", name="Parameter 1")
    parameter.get_by_label("Name").fill("name")
    parameter.get_by_label("Label").fill("Who to greet")
    parameter.get_by_label("Required").check()
    page.get_by_role("button", name="Create action").click()
    expect(page.get_by_role("heading", name="Greet", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="PT_PARAM_NAME")).to_be_visible()

    # The launch form: every server chosen, the parameter filled in.
    page.get_by_role("link", name="Run…").click()
    for name in servers:
        page.get_by_label(name, exact=True).check()
    page.get_by_label("Who to greet").fill(GUEST)
    worker.wait_ready()
    ui_done = time.monotonic()
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run #\d+ · Greet"))).to_be_visible()
    run = Run.objects.get(team=team)
    page.evaluate("window.journeyPage = 'the page as first loaded'")

    # Each server's first line shows while the run is still going…
    outputs = {name: page.get_by_role("region", name=f"Output of {name}") for name in servers}
    for name, output in outputs.items():
        expect(output).to_contain_text(f"Hello, {GUEST}, from {name}", timeout=RUN_TIMEOUT_MS)
    first_line_seen = time.monotonic()
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
    expect(page.locator("#run-status .badge-run")).to_have_text("Running")

    # …and the next lines arrive on the same page, without a reload.
    for output in outputs.values():
        expect(output).to_contain_text("step 2 of 3")
    assert page.evaluate("window.journeyPage") == "the page as first loaded"
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING

    # When the run ends, the page shows every server's result.
    expect(page.locator("#run-status .badge-run")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    finished = time.monotonic()
    rows = page.locator("table.targets tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:nth-child(1)")).to_have_text(list(servers))
    expect(rows.locator(".t-status")).to_have_text(["Succeeded"] * 3)
    expect(rows.locator(".t-exit")).to_have_text(["0"] * 3)
    expect(page.get_by_text("3 succeeded")).to_be_visible()
    expect(page.get_by_text(f"name={GUEST}")).to_be_visible()
    for name, output in outputs.items():
        expect(output.locator("pre")).to_have_text(
            f"Hello, {GUEST}, from {name}\nstep 2 of 3\nstep 3 of 3: done\n"
        )
    page.screenshot(path=str(screenshot_dir / "run-journey.png"), full_page=True)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert {t.worker for t in run.targets.all()} == {worker.hostname}
    print(
        f"\nsetup and UI {ui_done - started:.1f} s, first lines after "
        f"{first_line_seen - ui_done:.1f} s, run done after {finished - ui_done:.1f} s; "
        f"screenshot {screenshot_dir / 'run-journey.png'}"
    )

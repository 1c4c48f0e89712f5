from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from pipetower.accounts.models import User
from pipetower.core import crypto, ratelimit
from pipetower.teams.models import Role, Team
from tests.browser_fixtures import (  # noqa: F401  (Playwright + Chromium, see tests/browser_fixtures.py)
    browser,
    email_link,
    new_context,
    page,
    playwright_driver,
    screenshot_dir,
)
from tests.factories import PASSWORD, TeamFactory, UserFactory, member
from tests.smtp import SmtpSink, start_sink
from tests.sshd import (  # noqa: F401  (real sshd fixtures, see tests/sshd.py)
    free_port,
    silent_listener,
    sshd,
    sshd_fleet,
    sshd_password,
    sshd_user,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last; skip `embedded_only` tests in the scale-out pass.

    Playwright's sync driver keeps an event loop running in the main thread for
    the rest of the session, so tests that call `asyncio.run` must come first.

    An `embedded_only` test starts its own processes with the embedded default
    (SQLite, filesystem broker) whatever DATABASE_URL says, so the scale-out
    pass would only run it a second time: it is skipped there, with the reason.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    if os.environ.get("DATABASE_URL"):
        skip = pytest.mark.skip(reason="embedded default only: checked in the SQLite pass")
        for item in items:
            if item.get_closest_marker("embedded_only"):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """No rate-limit counters or cached data keys leak from one test to the next."""
    cache.clear()
    ratelimit.counters_clear()
    crypto.forget_cached_keys()
    yield
    cache.clear()
    ratelimit.counters_clear()
    crypto.forget_cached_keys()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db: None) -> User:
    return UserFactory(email="ada@example.com", name="Ada Lovelace")


@pytest.fixture
def team(user: User) -> Team:
    team = TeamFactory(name="Analytical Engines", slug="engines")
    team.memberships.create(user=user, role=Role.OWNER)
    return team


@pytest.fixture
def owner_client(client: Client, user: User, team: Team) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def make_member(team: Team):  # type: ignore[no-untyped-def]
    def make(role: Role = Role.VIEWER, **fields: object) -> User:
        return member(team, role, **fields)

    return make


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port; `.mailer` is its MAILERS entry."""
    sink, controller = start_sink()
    yield sink
    controller.stop()

"""One address: every link in every email goes to PIPETOWER_BASE_URL, whatever
host the browser that caused the email used (127.0.0.1, [::1], localhost)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from pipetower.accounts.models import SignInEvent
from pipetower.accounts.signins import signin_alert_send
from pipetower.privacy import export
from pipetower.privacy import services as privacy_services
from pipetower.teams import services as team_services
from tests.factories import PASSWORD

BASE = "https://pipetower.example.test"
# The browser in these tests talks to another address than the configured one.
BROWSER_HOST = {"HTTP_HOST": "127.0.0.1:8000"}
URL = re.compile(r"https?://[^\s\"'<>]+")


@pytest.fixture(autouse=True)
def base_url(settings):  # type: ignore[no-untyped-def]
    settings.BASE_URL = BASE
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    return BASE


def links(message) -> list[str]:  # type: ignore[no-untyped-def]
    bodies = [message.body] + [alt[0] for alt in getattr(message, "alternatives", [])]
    return [u.rstrip(".,)") for body in bodies for u in URL.findall(body)]


def assert_links_on_base(message) -> None:  # type: ignore[no-untyped-def]
    found = links(message)
    assert found, f"no link in {message.subject!r}"
    wrong = [u for u in found if u != BASE and not u.startswith(BASE + "/")]
    assert not wrong, f"{message.subject!r} links elsewhere: {wrong}"


def only(subject_part: str):  # type: ignore[no-untyped-def]
    matching = [m for m in mail.outbox if subject_part.lower() in m.subject.lower()]
    assert len(matching) == 1, [m.subject for m in mail.outbox]
    return matching[0]


def test_the_sign_up_confirmation_links_to_the_base_url(db, django_capture_on_commit_callbacks):
    client = Client(**BROWSER_HOST)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_links_on_base(only("confirm"))


def test_password_reset_and_unknown_account_emails_link_to_the_base_url(
    user, django_capture_on_commit_callbacks
):
    client = Client(**BROWSER_HOST)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password/reset/", {"email": user.email})
        client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert len(mail.outbox) == 2, [m.subject for m in mail.outbox]
    for message in mail.outbox:
        assert_links_on_base(message)


def test_the_invitation_links_to_the_base_url(user, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        team_services.invitation_create(
            team=team, actor=user, email="bob@example.com", role="operator"
        )
    assert_links_on_base(only("invit"))


def test_the_export_email_links_to_the_base_url(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        export.export_request(user=user)
    assert_links_on_base(only("export"))


def test_request_and_restriction_emails_link_to_the_base_url(
    user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        privacy_services.data_subject_request_create(
            user=user, kind="access", details="Please tell me what you hold about me."
        )
        privacy_services.restriction_start(user=user)
        privacy_services.restriction_lift_request(user=user)
    assert_links_on_base(only("received your request"))
    assert_links_on_base(only("about to be lifted"))


def test_the_sign_in_alert_links_to_the_base_url(user):
    event = SignInEvent.objects.create(
        user=user, method="password", outcome="success", ip="81.2.69.160"
    )
    signin_alert_send(event=event)
    assert_links_on_base(only("New sign-in"))


@pytest.mark.parametrize("alias", ["127.0.0.1:8000", "[::1]:8000"])
def test_a_local_alias_of_the_base_address_is_sent_to_it(settings, db, alias):
    """Cookies belong to a host name: one local name, so an emailed link finds the session."""
    settings.BASE_URL = "http://localhost:8000"
    from pipetower.core.links import LoopbackAliasRedirectMiddleware

    middleware = LoopbackAliasRedirectMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
    from django.test import RequestFactory

    response = middleware(RequestFactory().get("/teams/?page=2", HTTP_HOST=alias))
    assert response.status_code == 301
    assert response["Location"] == "http://localhost:8000/teams/?page=2"
    # Another port (another Pipetower) and the base name itself pass through.
    assert middleware(RequestFactory().get("/", HTTP_HOST="127.0.0.1:9000")) is None
    assert middleware(RequestFactory().get("/", HTTP_HOST="localhost:8000")) is None


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/teams/", {}),
        ("/api/v1/me", {"HTTP_AUTHORIZATION": "Bearer ptk_x_y"}),
        ("/healthz", {}),
        ("/hooks/abc/", {}),
        ("/teams/", {"HTTP_AUTHORIZATION": "Bearer ptk_x_y"}),
    ],
)
def test_machines_are_answered_on_the_local_alias_they_used(settings, db, path, headers):
    """A client following a 301 to another host name drops its token (then meets a
    401); a monitor asking /healthz wants the answer itself."""
    settings.BASE_URL = "http://localhost:8000"
    from django.http import HttpResponse
    from django.test import RequestFactory

    from pipetower.core.links import LoopbackAliasRedirectMiddleware

    middleware = LoopbackAliasRedirectMiddleware(lambda request: HttpResponse("answered"))
    response = middleware(RequestFactory().get(path, HTTP_HOST="127.0.0.1:8000", **headers))
    assert response.status_code == 200
    assert response.content == b"answered"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "9100"], None),  # the settings' default, http://localhost:9100, is printed
        (["--host", "0.0.0.0", "--port", "9100"], "http://localhost:9100"),
        (["--host", "192.0.2.7", "--port=9100"], "http://192.0.2.7:9100"),
        (["--tls-cert", "c.pem", "--tls-key", "k.pem"], "https://localhost:8000"),
    ],
)
def test_the_default_base_url_is_the_address_serve_prints(monkeypatch, argv, expected):
    from pipetower.cli import _port_to_environment

    monkeypatch.delenv("PIPETOWER_BASE_URL", raising=False)
    monkeypatch.delenv("PIPETOWER_PORT", raising=False)
    _port_to_environment(argv)
    import os

    assert os.environ.get("PIPETOWER_BASE_URL") == expected


def test_a_configured_base_url_is_kept(monkeypatch):
    from pipetower.cli import _port_to_environment

    monkeypatch.setenv("PIPETOWER_BASE_URL", "https://pipetower.example.com")
    _port_to_environment(["--host", "0.0.0.0", "--port", "9100"])
    import os

    assert os.environ["PIPETOWER_BASE_URL"] == "https://pipetower.example.com"


def test_an_unsupported_python_is_refused_with_a_clear_message():
    from pipetower.cli import unsupported_python

    message = unsupported_python((3, 11, 9))
    assert message is not None
    assert "needs Python 3.12 or newer" in message and "Python 3.11.9" in message
    assert unsupported_python((3, 12, 0)) is None and unsupported_python((3, 13, 1)) is None

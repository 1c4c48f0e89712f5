"""allauth's emails speak of Pipetower and link back to it."""

from __future__ import annotations

from django.conf import settings

from tests.accounts.conftest import STRONG_PASSWORD, link_in


def test_the_signup_confirmation_email_speaks_of_pipetower(client, db, mailoutbox, committed):
    with committed():
        client.post(
            "/accounts/signup/",
            {
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "password1": STRONG_PASSWORD,
                "password2": STRONG_PASSWORD,
            },
        )
    message = mailoutbox[0]
    assert message.subject == "[Pipetower] Confirm your email address"
    assert message.body.startswith("Hello from Pipetower,")
    assert "Pipetower account of Grace Hopper" in message.body
    assert link_in(message).startswith("/accounts/confirm-email/")
    assert message.body.rstrip().endswith(f"Pipetower at {settings.BASE_URL}")
    assert message.from_email == "Pipetower <pipetower@localhost>"


def test_the_reset_email_speaks_of_pipetower(client, user, mailoutbox, committed):
    with committed():
        client.post("/accounts/password/reset/", {"email": "ada@example.com"})
    message = mailoutbox[0]
    assert message.subject.startswith("[Pipetower] ")
    assert "Hello from Pipetower" in message.body
    assert link_in(message).startswith("/accounts/password/reset/key/")


def test_no_email_leaves_before_the_work_is_committed(client, user, mailoutbox, committed):
    with committed():
        client.post("/accounts/password/reset/", {"email": "ada@example.com"})
        assert mailoutbox == []
    assert len(mailoutbox) == 1

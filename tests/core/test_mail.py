"""Email leaves Pipetower through Django's mail API: a real SMTP server, or the embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives, mailers, send_mail

from pipetower.config import settings as configured
from tests.smtp import SmtpSink

LINK = "http://localhost:8000/accounts/confirm-email/MQ:1v2w3x:abcdef/"


def test_smtp_backend_delivers_to_a_real_smtp_server(settings, smtp_sink: SmtpSink) -> None:
    settings.MAILERS = {"default": smtp_sink.mailer}

    sent = send_mail(
        "[Pipetower] Confirm your email address",
        f"Open this link to confirm your address:\n{LINK}\n",
        None,
        ["grace@example.com"],
    )

    assert sent == 1
    (delivery,) = smtp_sink.wait_for(1)
    assert delivery.rcpt_tos == ["grace@example.com"]
    assert delivery.mail_from == "pipetower@localhost"
    message = delivery.message
    assert message["Subject"] == "[Pipetower] Confirm your email address"
    assert message["To"] == "grace@example.com"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert LINK in message.get_content()


def test_smtp_backend_delivers_text_and_html_parts(settings, smtp_sink: SmtpSink) -> None:
    settings.MAILERS = {"default": smtp_sink.mailer}
    email = EmailMultiAlternatives(
        subject="[Pipetower] Ada invited you to Analytical Engines",
        body=f"Join the team: {LINK}",
        to=["Grace Hopper <grace@example.com>"],
        cc=["audit@example.com"],
    )
    email.attach_alternative(f'<p><a href="{LINK}">Join the team</a></p>', "text/html")

    email.send()

    (delivery,) = smtp_sink.wait_for(1)
    assert sorted(delivery.rcpt_tos) == ["audit@example.com", "grace@example.com"]
    message = delivery.message
    assert message["To"] == "Grace Hopper <grace@example.com>"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert LINK in text.get_content()
    assert f'href="{LINK}"' in html.get_content()


def test_an_unreachable_smtp_server_is_an_error_not_a_silent_loss(settings, smtp_sink) -> None:
    mailer = smtp_sink.mailer
    mailer["OPTIONS"] = {**mailer["OPTIONS"], "port": smtp_sink.port + 1, "timeout": 2}
    settings.MAILERS = {"default": mailer}

    with pytest.raises(OSError):
        send_mail("Subject", "Body", None, ["grace@example.com"])

    assert smtp_sink.deliveries == []


def mail_files(folder: Path) -> set[Path]:
    return set(folder.glob("*.log")) if folder.exists() else set()


def test_embedded_default_writes_each_message_to_the_console_and_the_mail_folder(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    default = configured.MAILERS["default"]  # what Pipetower runs with when no mailer is set
    folder = Path(settings.DATA_DIR) / "mail"
    assert default == {
        "BACKEND": "pipetower.core.mail.ConsoleAndFileBackend",
        "OPTIONS": {"file_path": str(folder)},
    }
    settings.MAILERS = {"default": default}
    before = mail_files(folder)

    sent = send_mail(
        "[Pipetower] Confirm your email address",
        f"Open this link to confirm your address:\n{LINK}\n",
        None,
        ["grace@example.com"],
    )

    assert sent == 1
    printed = capsys.readouterr().out
    assert "Subject: [Pipetower] Confirm your email address" in printed
    assert "To: grace@example.com" in printed
    assert LINK in printed
    (written,) = mail_files(folder) - before
    content = written.read_text()
    assert "Subject: [Pipetower] Confirm your email address" in content
    assert "To: grace@example.com" in content
    assert LINK in content
    # The folder holds sign-in links: nobody but Pipetower's own user may read it.
    assert folder.stat().st_mode & 0o777 == 0o700


def test_embedded_default_writes_a_batch_sent_over_one_connection_to_one_file(
    settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mail"
    settings.MAILERS = {
        "default": {
            "BACKEND": "pipetower.core.mail.ConsoleAndFileBackend",
            "OPTIONS": {"file_path": str(folder)},
        }
    }
    batch = [
        EmailMessage(f"Hello {name}", f"Hi {name}", to=[f"{name}@example.com"])
        for name in ("grace", "alan")
    ]

    sent = mailers.default.send_messages(batch)

    assert sent == 2
    printed = capsys.readouterr().out
    assert "Subject: Hello grace" in printed and "Subject: Hello alan" in printed
    (written,) = folder.glob("*.log")
    content = written.read_text()
    assert "To: grace@example.com" in content and "To: alan@example.com" in content


def test_embedded_default_keeps_long_links_whole_so_they_can_be_copied(
    settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A long link in a body with non-ASCII text is where MIME would fold the
    # line with quoted-printable "=" breaks; people copy these links by hand.
    link = "http://localhost:8000/accounts/confirm-email/MQ:1xXksJ:" + "x" * 90 + "/"
    folder = tmp_path / "mail"
    settings.MAILERS = {
        "default": {
            "BACKEND": "pipetower.core.mail.ConsoleAndFileBackend",
            "OPTIONS": {"file_path": str(folder)},
        }
    }

    mailers.default.send_messages(
        [
            EmailMessage(
                "Confirm",
                f"Vous \u00eates presque l\u00e0 \u2014 open:\n\n{link}\n",
                to=["a@example.com"],
            )
        ]
    )

    assert link in capsys.readouterr().out.splitlines()
    (written,) = folder.glob("*.log")
    assert link in written.read_text(encoding="utf-8").splitlines()
    assert written.stat().st_mode & 0o777 == 0o600

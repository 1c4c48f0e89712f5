"""The public list of subprocessors: kept by staff through audited services,
followed by anyone through double opt-in, every change mailed to confirmed
subscribers only, with an unsubscribe link in every mail."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.models import OutboxMessage
from pipetower.privacy import subprocessors
from pipetower.privacy.deletion import account_erase
from pipetower.privacy.export import export_categories
from pipetower.privacy.models import Subprocessor, SubprocessorChange, SubprocessorSubscriber
from tests.factories import UserFactory
from tests.smtp import SmtpSink

pytestmark = pytest.mark.django_db

PAGE = "/privacy/subprocessors/"
LINK = re.compile(r"https?://[^\s>]+")


@pytest.fixture
def staff() -> Any:
    return UserFactory(email="staff@pipetower.example", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: Any, settings: Any) -> Client:
    settings.ADMIN_REQUIRE_2FA = False
    client = Client()
    client.force_login(staff)
    return client


def _path(url: str) -> str:
    return url[url.index("/privacy/") :]


def _links(message: Any) -> list[str]:
    return LINK.findall(message.body)


def add(staff: Any, name: str = "Mailgun", **fields: Any) -> Subprocessor:
    values = {"purpose": "Sending email", "location": "European Union", "since": date(2024, 1, 1)}
    return subprocessors.subprocessor_add(actor=staff, name=name, **{**values, **fields})


def subscribe(client: Client, email: str, capture: Any) -> str:
    """Ask for a subscription; the path of the confirmation link mailed."""
    with capture(execute=True):
        response = client.post(PAGE, {"email": email})
    assert response.status_code == 302
    message = mail.outbox[-1]
    assert message.to == [email.lower()]
    return _path(_links(message)[0])


def confirmed(client: Client, email: str, capture: Any) -> SubprocessorSubscriber:
    link = subscribe(client, email, capture)
    assert client.post(link).status_code == 302
    return SubprocessorSubscriber.objects.get(email=email.lower())


# ------------------------------------------------------------------ the page


def test_anyone_sees_each_subprocessor_with_purpose_location_and_since(
    client: Client, staff: Any
) -> None:
    add(staff, "Hetzner", purpose="Hosting the service", location="Germany", since=date(2023, 5, 2))
    add(staff, "Mailgun", purpose="Sending email", location="European Union")
    response = client.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    for text in ("Hetzner", "Hosting the service", "Germany", "2 May 2023", "Mailgun"):
        assert text in body
    assert body.index("Hetzner") < body.index("Mailgun")


def test_an_empty_list_says_that_no_one_else_processes_data(client: Client) -> None:
    body = client.get(PAGE).content.decode()
    assert "No subprocessors are listed" in body
    assert "No changes yet." in body


def test_one_announced_for_later_shows_when_it_starts(client: Client, staff: Any) -> None:
    add(staff, "Cloudflare", since=timezone.localdate() + timedelta(days=30))
    body = client.get(PAGE).content.decode()
    assert "(announced)" in body


def test_markup_in_the_list_is_shown_as_text(client: Client, staff: Any) -> None:
    add(staff, "<b>Evil</b> Corp", purpose='<img src=x onerror="alert(1)">')
    body = client.get(PAGE).content.decode()
    assert "&lt;b&gt;Evil&lt;/b&gt; Corp" in body
    assert "<b>Evil</b>" not in body
    assert "<img src=x" not in body


def test_the_list_is_paginated(client: Client, staff: Any) -> None:
    for n in range(51):
        add(staff, f"Company {n:02d}")
    first = client.get(PAGE).content.decode()
    assert "<td><bdi>Company 49</bdi></td>" in first
    assert "<td><bdi>Company 50</bdi></td>" not in first
    assert "Page 1 of 2" in first
    assert "<td><bdi>Company 50</bdi></td>" in client.get(PAGE + "?page=2").content.decode()


def test_the_footer_and_the_privacy_page_link_both_registers(client: Client) -> None:
    body = client.get("/privacy/").content.decode()
    assert body.count('href="/privacy/subprocessors/"') >= 2  # the page and the footer
    assert body.count('href="/privacy/transparency/"') >= 2


# ---------------------------------------------------------------- subscribing


def test_subscribing_mails_a_confirmation_link_and_stores_nothing(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    link = subscribe(client, "Reader@Example.com", django_capture_on_commit_callbacks)
    assert link.startswith("/privacy/subprocessors/confirm/")
    assert not SubprocessorSubscriber.objects.exists()
    assert "reader@example.com" not in str(list(AuditEvent.objects.values()))
    page = client.get(PAGE).content.decode()
    assert "Check your inbox" in page


def test_the_link_confirms_only_after_a_click(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    link = subscribe(client, "reader@example.com", django_capture_on_commit_callbacks)
    shown = client.get(link)
    assert shown.status_code == 200
    assert "reader@example.com" in shown.content.decode()
    assert not SubprocessorSubscriber.objects.exists()  # a mail scanner opening it confirms nothing
    response = client.post(link, follow=True)
    assert "Subscribed." in response.content.decode()
    subscriber = SubprocessorSubscriber.objects.get()
    assert subscriber.email == "reader@example.com"
    assert client.post(link).status_code == 302  # twice is harmless
    assert SubprocessorSubscriber.objects.count() == 1


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("", "Enter the email address that should receive the news."),
        ("not-an-address", "Enter a valid email address, like name@example.com."),
        ("a@b", "Enter a valid email address, like name@example.com."),
    ],
)
def test_a_bad_address_gets_a_clear_error_and_no_mail(
    client: Client, email: str, error: str
) -> None:
    response = client.post(PAGE, {"email": email})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert mail.outbox == []


def test_the_service_refuses_a_bad_address_too() -> None:
    with pytest.raises(ServiceError) as exc:
        subprocessors.subscription_request(email="no at sign")
    assert exc.value.field == "email"


def test_a_tampered_or_expired_confirmation_link_is_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    link = subscribe(client, "reader@example.com", django_capture_on_commit_callbacks)
    tampered = client.post(link.replace("/confirm/", "/confirm/x"))
    assert tampered.status_code == 403
    assert "not valid" in tampered.content.decode()
    monkeypatch.setattr(subprocessors, "CONFIRM_LINK_MAX_AGE", timedelta(seconds=-1))
    expired = client.post(link)
    assert expired.status_code == 410
    assert "expired" in expired.content.decode()
    assert not SubprocessorSubscriber.objects.exists()


def test_an_address_already_subscribed_is_told_so_by_email_and_not_added_twice(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    confirmed(client, "reader@example.com", django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PAGE, {"email": "reader@example.com"}, follow=True)
    # The page says the same as for a new address: it tells no one who is subscribed.
    assert "Check your inbox" in response.content.decode()
    assert "already receives them" in mail.outbox[0].body
    assert SubprocessorSubscriber.objects.count() == 1


def test_subscribing_is_limited_per_network(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SUBSCRIBE_RATE_LIMIT = "2/h"
    for n in range(2):
        assert client.post(PAGE, {"email": f"r{n}@example.com"}).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PAGE, {"email": "r3@example.com"})
    assert response.status_code == 429
    assert "Too many subscriptions from your network. Try again in 60 minutes." in (
        response.content.decode()
    )
    assert 3500 < int(response["Retry-After"]) <= 3600
    assert mail.outbox == []  # no link mailed for the refused one


# ------------------------------------------------------------- change mail


def test_a_change_reaches_confirmed_subscribers_only(
    client: Client,
    staff: Any,
    settings: Any,
    smtp_sink: SmtpSink,
    django_capture_on_commit_callbacks: Any,
) -> None:
    confirmed(client, "follower@example.com", django_capture_on_commit_callbacks)
    subscribe(client, "pending@example.com", django_capture_on_commit_callbacks)  # never confirmed
    settings.MAILERS = {"default": smtp_sink.mailer}  # the change mail goes to a real SMTP server
    with django_capture_on_commit_callbacks(execute=True):
        add(staff, "Cloudflare", purpose="Protecting the site", location="Worldwide")
    [delivery] = smtp_sink.wait_for(1)
    assert delivery.rcpt_tos == ["follower@example.com"]
    message = delivery.message
    assert "Cloudflare" in message["Subject"]
    body = message.get_content()
    assert "Added: Cloudflare" in body and "Protecting the site" in body and "Worldwide" in body
    link = message["List-Unsubscribe"].strip("<>")
    assert f"Unsubscribe with one click: {link}" in body
    change = SubprocessorChange.objects.get()
    assert (change.kind, change.sent_count) == ("added", 1)
    assert OutboxMessage.objects.filter(subject=f"privacy.subprocessor_change:{change.pk}").exists()


def test_the_change_mail_goes_on_the_mail_queue() -> None:
    from pipetower.config.celery import app

    route = app.amqp.router.route({}, "pipetower.privacy.tasks.subprocessor_change_send_task")
    assert route["queue"].name == "mail"


def test_a_change_with_no_subscribers_is_recorded_and_sends_nothing(
    staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        add(staff)
    change = SubprocessorChange.objects.get()
    assert change.sent_at is not None and change.sent_count == 0
    assert mail.outbox == []


def test_changes_and_removals_say_what_changed(
    client: Client, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sub = add(staff, "Mailgun", location="European Union")
    confirmed(client, "follower@example.com", django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        subprocessors.subprocessor_change(
            actor=staff,
            subprocessor_id=sub.pk,
            name="Mailgun",
            purpose="Sending email",
            location="United States",
            since=date(2024, 1, 1),
        )
    assert "Location: European Union → United States" in mail.outbox[0].body
    with django_capture_on_commit_callbacks(execute=True):
        subprocessors.subprocessor_remove(actor=staff, subprocessor_id=sub.pk)
    assert "removed from" in mail.outbox[1].subject
    assert "Mailgun no longer processes" in mail.outbox[1].body
    assert not Subprocessor.objects.exists()
    verbs = set(AuditEvent.objects.filter(actor=staff).values_list("verb", flat=True))
    assert {
        "privacy.subprocessor_added",
        "privacy.subprocessor_changed",
        "privacy.subprocessor_removed",
    } <= verbs
    history = client.get(PAGE).content.decode()
    assert "removed: <bdi>Mailgun</bdi>" in history


def test_saving_a_row_unchanged_mails_nobody(staff: Any) -> None:
    sub = add(staff)
    subprocessors.subprocessor_change(
        actor=staff,
        subprocessor_id=sub.pk,
        name=" Mailgun ",
        purpose="Sending email",
        location="European Union",
        since=date(2024, 1, 1),
    )
    assert SubprocessorChange.objects.count() == 1  # the addition only


def test_a_second_delivery_of_the_task_sends_nothing(
    client: Client, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    confirmed(client, "follower@example.com", django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        add(staff)
    change = SubprocessorChange.objects.get()
    assert subprocessors.subprocessor_change_send(change_id=change.pk) == 0
    assert len(mail.outbox) == 1


# ------------------------------------------------------------- unsubscribing


def test_the_unsubscribe_link_in_a_mail_forgets_the_address(
    client: Client, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    confirmed(client, "follower@example.com", django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        add(staff)
    link = _path(mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>"))
    shown = client.get(link)
    assert shown.status_code == 200 and "follower@example.com" in shown.content.decode()
    # Mail clients post without a CSRF token (one-click unsubscribe).
    one_click = Client(enforce_csrf_checks=True)
    response = one_click.post(link, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert not SubprocessorSubscriber.objects.exists()
    again = client.post(link)
    assert again.status_code == 410
    assert "not subscribed any more" in again.content.decode()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        add(staff, "Hetzner")
    assert mail.outbox == []


def test_the_confirmation_of_an_address_already_subscribed_carries_an_unsubscribe_link(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    confirmed(client, "reader@example.com", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(PAGE, {"email": "reader@example.com"})
    link = _path(_links(mail.outbox[-1])[-1])
    assert client.post(link).status_code == 200
    assert not SubprocessorSubscriber.objects.exists()


def test_a_forged_unsubscribe_link_is_refused(client: Client) -> None:
    response = client.post("/privacy/subprocessors/unsubscribe/forged/")
    assert response.status_code == 403
    assert "not valid" in response.content.decode()


def test_the_activity_log_never_holds_a_subscribers_address(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    confirmed(client, "follower@example.com", django_capture_on_commit_callbacks)
    events = list(AuditEvent.objects.values())
    assert [e["verb"] for e in events] == ["privacy.subprocessor_subscribed"]
    assert "follower@example.com" not in str(events)
    assert events[0]["ip"] is None


# ------------------------------------------------------------- staff only


def test_a_person_who_is_not_staff_cannot_change_the_list(staff: Any) -> None:
    sub = add(staff)
    person = UserFactory()
    fields = {"purpose": "p", "location": "l", "since": date(2024, 1, 1)}
    with pytest.raises(NotAllowed):
        subprocessors.subprocessor_add(actor=person, name="Sneaky", **fields)
    with pytest.raises(NotAllowed):
        subprocessors.subprocessor_change(
            actor=person, subprocessor_id=sub.pk, name="Renamed", **fields
        )
    with pytest.raises(NotAllowed):
        subprocessors.subprocessor_remove(actor=person, subprocessor_id=sub.pk)
    client = Client()
    client.force_login(person)
    response = client.post(
        "/admin/privacy/subprocessor/add/", {"name": "Sneaky", **fields, "since": "2024-01-01"}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert list(Subprocessor.objects.values_list("name", flat=True)) == ["Mailgun"]
    assert SubprocessorChange.objects.count() == 1


def test_the_back_office_adds_changes_and_removes_through_the_service(
    staff_client: Client, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    form = {"name": "Hetzner", "purpose": "Hosting", "location": "Germany", "since": "2023-05-02"}
    response = staff_client.post("/admin/privacy/subprocessor/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    sub = Subprocessor.objects.get()
    response = staff_client.post(
        f"/admin/privacy/subprocessor/{sub.pk}/change/", {**form, "location": "Finland"}
    )
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.location == "Finland"
    response = staff_client.post(f"/admin/privacy/subprocessor/{sub.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Subprocessor.objects.exists()
    kinds = list(SubprocessorChange.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["added", "changed", "removed"]
    events = AuditEvent.objects.filter(actor=staff, verb__startswith="privacy.subprocessor_")
    assert events.count() == 3


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "", "Give the subprocessor&#x27;s name."),
        ("name", "Mailgun", "Mailgun is already listed. Change that entry instead."),
        ("purpose", "   ", "Say what the subprocessor does with personal data"),
        ("location", "   ", "Say where the data is processed"),
        ("since", "", "Give the date it started (or starts) processing."),
        ("since", "yesterday", "Enter a valid date."),
    ],
)
def test_the_back_office_shows_a_clear_error_for_bad_input(
    staff_client: Client, staff: Any, field: str, value: str, error: str
) -> None:
    add(staff, "Mailgun")
    form = {"name": "Hetzner", "purpose": "Hosting", "location": "Germany", "since": "2023-05-02"}
    response = staff_client.post("/admin/privacy/subprocessor/add/", {**form, field: value})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Subprocessor.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "x" * 201}, "name"),
        ({"purpose": "x" * 501}, "purpose"),
        ({"location": "x" * 201}, "location"),
        ({"since": None}, "since"),
    ],
)
def test_the_service_checks_every_field(staff: Any, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ServiceError) as exc:
        add(staff, **fields)
    assert exc.value.field == field


def test_a_duplicate_name_is_refused_whatever_its_case(staff: Any) -> None:
    add(staff, "Mailgun")
    with pytest.raises(Conflict):
        add(staff, "MAILGUN")
    # The database holds the line too, for two staff members adding it at once.
    with pytest.raises(IntegrityError), transaction.atomic():
        Subprocessor.objects.create(name="mailgun", purpose="p", location="l", since=date.today())


# ------------------------------------------------------------- the data map


def test_a_subscription_is_exported_and_erased_with_the_account_of_its_address(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    person = UserFactory(email="ada@example.com")
    confirmed(client, "ADA@example.com", django_capture_on_commit_callbacks)
    confirmed(client, "someone.else@example.com", django_capture_on_commit_callbacks)
    [category] = [c for c in export_categories() if c.name == "privacy_subprocessorsubscriber"]
    assert [row["email"] for row in category.collect(person)] == ["ada@example.com"]
    # An address on an account but never confirmed there shows nothing.
    unproved = UserFactory(email="someone.else@example.com", verified=False)
    assert category.collect(unproved) == []

    report = account_erase(user=person)
    assert report.categories["privacy.SubprocessorSubscriber deleted"] == 1
    assert list(SubprocessorSubscriber.objects.values_list("email", flat=True)) == [
        "someone.else@example.com"
    ]


def test_the_links_tokens_never_reach_the_log() -> None:
    from pipetower.core.logsafe import redact

    for path in (
        "/privacy/subprocessors/confirm/s3cr3t/",
        "/privacy/subprocessors/unsubscribe/s3cr3t/",
    ):
        assert "s3cr3t" not in redact(f"Gone: {path}")

"""Privacy policy versions: staff publish them, everyone reads them, a significant
change is emailed to every account once and shown in a banner until acknowledged."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.models import OutboxMessage
from pipetower.privacy.export import export_archive
from pipetower.privacy.models import PolicyAcknowledgement, PolicyNotice, PolicyVersion, Purpose
from pipetower.privacy.policy import (
    CLAIM_LEASE,
    policy_acknowledge,
    policy_announce_progress,
    policy_announce_resume,
    policy_announce_send,
    policy_banner_for,
    policy_version_publish,
)
from pipetower.privacy.services import restriction_start
from tests.factories import UserFactory
from tests.privacy.conftest import grant
from tests.smtp import SmtpSink, free_port

pytestmark = pytest.mark.django_db

POLICY = "# Our policy\n\nWe keep **little**.\n\n- your email\n- your name\n"
ADMIN_ADD = "/admin/privacy/policyversion/add/"


def _long_ago() -> Any:
    return timezone.now() - timedelta(days=30)


@pytest.fixture
def staff() -> User:
    return UserFactory(
        email="staff@pipetower.example", is_staff=True, is_superuser=True, date_joined=_long_ago()
    )


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def people() -> list[User]:
    """Three active accounts made before any version, and one closed account."""
    made = [
        UserFactory(email=f"{name}@example.com", name=name.title(), date_joined=_long_ago())
        for name in ("ada", "grace", "edsger")
    ]
    UserFactory(email="gone@example.com", is_active=False, date_joined=_long_ago())
    return made


def publish(staff: User, text: str = POLICY, *, significant: bool = False, **kw: Any) -> Any:
    return policy_version_publish(
        staff=staff, text=text, summary=kw.pop("summary", "First version."), significant=significant
    )


# --------------------------------------------------------------------- publishing


def test_staff_publish_numbered_versions_with_an_audit_row(staff: User) -> None:
    first = publish(staff)
    second = publish(staff, POLICY + "\nWe added a line.\n", summary="A new line.")

    assert (first.number, second.number) == (1, 2)
    assert second.summary == "A new line." and second.published_by == staff
    events = AuditEvent.objects.filter(verb="privacy.policy_published").order_by("id")
    assert [(e.actor_id, e.target_id, e.data) for e in events] == [
        (staff.pk, "1", {"number": 1, "significant": False}),
        (staff.pk, "2", {"number": 2, "significant": False}),
    ]


@pytest.mark.parametrize(
    "again",
    [POLICY, POLICY.replace("\n", "\r\n"), "\n  " + POLICY.replace("little**.", "little**.   ")],
    ids=["same", "windows-line-ends", "only-spaces-differ"],
)
def test_publishing_the_text_of_the_current_version_again_is_refused(
    staff: User, again: str
) -> None:
    publish(staff)
    with pytest.raises(Conflict, match=r"identical to the current version \(version 1\)") as exc:
        publish(staff, again, summary="Nothing really.")
    assert exc.value.field == "text"
    assert PolicyVersion.objects.count() == 1


def test_an_older_text_may_come_back_as_a_new_version(staff: User) -> None:
    publish(staff)
    publish(staff, "Something else.", summary="Changed.")
    assert publish(staff, POLICY, summary="Back to the first text.").number == 3


def test_a_published_version_never_changes(staff: User) -> None:
    version = publish(staff)
    version.text = "Quietly edited."
    with pytest.raises(ValueError, match="never changes"):
        version.save()
    assert PolicyVersion.objects.get().text == POLICY.strip()


@pytest.mark.parametrize(
    ("text", "summary", "field", "message"),
    [
        ("   ", "Summary", "text", "Write the text of the policy."),
        (POLICY, "  ", "summary", "Say in a few sentences what changed"),
        ("x" * 200_001, "Summary", "text", "at most 200,000 characters"),
        (POLICY, "s" * 2_001, "summary", "under 2,000 characters"),
    ],
    ids=["no-text", "no-summary", "text-too-long", "summary-too-long"],
)
def test_bad_input_is_refused_with_a_clear_error(
    staff: User, text: str, summary: str, field: str, message: str
) -> None:
    with pytest.raises(ServiceError, match=message) as exc:
        policy_version_publish(staff=staff, text=text, summary=summary, significant=False)
    assert exc.value.field == field
    assert not PolicyVersion.objects.exists()


def test_someone_who_is_not_staff_cannot_publish(people: list[User]) -> None:
    with pytest.raises(NotAllowed, match="Only Pipetower staff publish the privacy policy"):
        policy_version_publish(staff=people[0], text=POLICY, summary="Mine.", significant=True)
    assert not PolicyVersion.objects.exists()
    assert not PolicyNotice.objects.exists()


def test_the_back_office_publishes_through_the_service(staff_client: Client, staff: User) -> None:
    response = staff_client.post(
        ADMIN_ADD, {"text": POLICY, "summary": "First version.", "significant": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = PolicyVersion.objects.get()
    assert (version.number, version.published_by_id, version.significant) == (1, staff.pk, False)
    assert AuditEvent.objects.filter(verb="privacy.policy_published", actor=staff).count() == 1


def test_the_back_office_shows_the_duplicate_refusal_on_the_form(
    staff_client: Client, staff: User
) -> None:
    publish(staff)
    response = staff_client.post(
        ADMIN_ADD, {"text": POLICY, "summary": "Again.", "significant": ""}
    )
    assert response.status_code == 200
    assert "identical to the current version (version 1)" in response.content.decode()
    assert PolicyVersion.objects.count() == 1


def test_the_back_office_cannot_edit_or_delete_a_published_version(
    staff_client: Client, staff: User
) -> None:
    publish(staff)
    page = staff_client.get("/admin/privacy/policyversion/1/change/")
    assert page.status_code == 200 and 'name="text"' not in page.content.decode()  # read only
    staff_client.post("/admin/privacy/policyversion/1/change/", {"text": "Edited", "summary": "x"})
    assert staff_client.post("/admin/privacy/policyversion/1/delete/").status_code == 403
    assert PolicyVersion.objects.get().text == POLICY.strip()


def test_a_person_without_staff_rights_cannot_reach_the_publishing_form(
    people: list[User],
) -> None:
    client = Client()
    client.force_login(people[0])
    response = client.post(ADMIN_ADD, {"text": POLICY, "summary": "Mine.", "significant": "on"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not PolicyVersion.objects.exists()


# ------------------------------------------------------------------ public pages


def test_before_any_version_the_pages_say_so_and_the_privacy_page_still_works(
    client: Client,
) -> None:
    page = client.get("/privacy/policy/")
    assert page.status_code == 200
    assert "No version of the privacy policy has been published here yet" in page.content.decode()
    assert "There are no earlier versions." in page.content.decode()
    assert client.get("/privacy/").status_code == 200
    missing = client.get("/privacy/policy/versions/1/")
    assert missing.status_code == 404


def test_the_current_version_and_the_earlier_ones_show_without_signing_in(
    client: Client, staff: User
) -> None:
    publish(staff, "First text.", summary="We started.")
    publish(staff, "Second text.", summary="We clarified retention.", significant=True)
    publish(staff, "Third text.", summary="Typo fixed.")

    page = client.get("/privacy/policy/").content.decode()
    assert "Version 3, published" in page and "Third text." in page and "Typo fixed." in page
    earlier = page[page.index("Earlier versions") :]
    assert earlier.index("Version 2") < earlier.index("Version 1")  # newest first
    assert "We clarified retention." in earlier and "We started." in earlier
    assert "significant change" in earlier
    assert "First text." not in page  # earlier texts are on their own pages

    old = client.get("/privacy/policy/versions/1/").content.decode()
    assert "First text." in old and "We started." in old
    assert 'Replaced by <a href="/privacy/policy/versions/2/">version 2</a>' in old
    current = client.get("/privacy/policy/versions/3/").content.decode()
    assert "This is <a" in current and "the current version</a>" in current


def test_the_list_of_earlier_versions_is_paginated(client: Client, staff: User) -> None:
    for n in range(1, 24):
        publish(staff, f"Text {n}.", summary=f"Change {n}.")
    first = client.get("/privacy/policy/").content.decode()
    assert "Change 22." in first and "Change 3." in first and "Change 2." not in first
    assert "Page 1 of 2" in first
    second = client.get("/privacy/policy/", {"page": 2}).content.decode()
    assert "Change 2." in second and "Change 1." in second and "Change 22." not in second


def test_markdown_is_rendered_and_stored_markup_is_only_ever_text(
    client: Client, staff: User
) -> None:
    text = (
        "## Who we are\n\nWe are **Pipetower**. Write to [us](mailto:privacy@example.com).\n\n"
        '<script>alert("x")</script> <img src=x onerror=alert(1)>\n\n'
        "[click](javascript:alert(2)) and `<b>code</b>`\n\n- one\n- two\n"
    )
    publish(staff, text, summary='<b onmouseover="alert(3)">Summary</b>')
    for path in ("/privacy/policy/", "/privacy/policy/versions/1/"):
        html = client.get(path).content.decode()
        assert "<h3>Who we are</h3>" in html
        assert "<strong>Pipetower</strong>" in html
        assert '<a href="mailto:privacy@example.com" rel="nofollow noopener">us</a>' in html
        assert "<ul><li>one</li><li>two</li></ul>" in html
        assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)" in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'href="javascript' not in html and "[click](javascript:alert(2))" in html
        assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in html
        assert "<b onmouseover" not in html and "&lt;b onmouseover=" in html


def test_every_page_links_the_policy_from_its_footer(client: Client) -> None:
    for path in ("/", "/privacy/", "/privacy/policy/"):
        html = client.get(path, follow=True).content.decode()
        assert '<a href="/privacy/policy/">Privacy policy</a>' in html, path


# ------------------------------------------------------------------ announcement


def test_a_significant_version_emails_every_active_account_once(
    staff: User, people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    # A service notice goes to everyone: restricted, and without newsletter consent.
    restriction_start(user=people[1])
    grant(people[2], Purpose.NEWSLETTER, granted=False)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        version = publish(staff, significant=True, summary="We now keep logs for 90 days.")

    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == sorted([staff.email, *(p.email for p in people)])  # not the closed one
    message = next(m for m in mail.outbox if m.to == ["ada@example.com"])
    assert message.subject == "[Pipetower] Service notice: our privacy policy changed (version 1)"
    assert message.body.startswith("This is a service notice about a change to our terms")
    assert "not marketing" in message.body
    assert "We now keep logs for 90 days." in message.body
    assert "/privacy/policy/versions/1/" in message.body
    assert "List-Unsubscribe" not in message.extra_headers
    assert policy_announce_progress(number=version.number).done

    # Running the sender again (a second delivery of the task) emails nobody.
    mail.outbox.clear()
    assert str(policy_announce_send(number=version.number)) == "4 / 4"
    assert mail.outbox == []


def test_a_minor_version_is_not_announced(staff: User, people: list[User], client: Client) -> None:
    mail.outbox.clear()
    publish(staff)
    assert mail.outbox == [] and not PolicyNotice.objects.exists()
    client.force_login(people[0])
    assert "policy-banner" not in client.get("/privacy/").content.decode()


class FlakySink(SmtpSink):
    """The real SMTP sink, refusing the message for one address the first time."""

    refuse_once: set[str]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refused = self.refuse_once & set(envelope.rcpt_tos)
        if refused:
            self.refuse_once -= refused
            return "451 Try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_sink() -> Iterator[FlakySink]:
    sink = FlakySink(host="127.0.0.1", port=free_port())
    sink.refuse_once = {"grace@example.com"}
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


def test_an_announcement_cut_short_resumes_and_emails_everyone_exactly_once(
    staff: User, people: list[User], flaky_sink: FlakySink, settings: Any
) -> None:
    settings.MAILERS = {"default": flaky_sink.mailer}
    version = publish(staff, significant=True, summary="Retention changed.")
    assert str(policy_announce_progress(number=1)) == "0 / 4"

    # The mail server refuses the third recipient (Grace): the sender stops there.
    with pytest.raises(Exception, match="Try again later"):
        policy_announce_send(number=version.number)
    assert str(policy_announce_progress(number=1)) == "2 / 4"

    # Resumed (the task's retry): the rest is sent, and nobody twice.
    assert str(policy_announce_send(number=version.number)) == "4 / 4"
    delivered = sorted(d.rcpt_tos[0] for d in flaky_sink.deliveries)
    assert delivered == sorted([staff.email, *(p.email for p in people)])
    ids = [d.message["Message-ID"] for d in flaky_sink.deliveries]
    assert len(set(ids)) == 4 and all(i.startswith("<policy-1-notice-") for i in ids)


def test_a_claim_left_by_a_crashed_sender_is_taken_over_after_its_lease(
    staff: User, people: list[User]
) -> None:
    version = publish(staff, significant=True, summary="Retention changed.")
    notices = list(PolicyNotice.objects.filter(version=version).select_related("user"))
    now = timezone.now()
    # One row already sent, one claimed a moment ago by a sender that is still
    # working, one claimed by a sender that died long ago.
    PolicyNotice.objects.filter(pk=notices[0].pk).update(claimed_at=now, sent_at=now)
    PolicyNotice.objects.filter(pk=notices[1].pk).update(claimed_at=now)
    PolicyNotice.objects.filter(pk=notices[2].pk).update(claimed_at=now - CLAIM_LEASE * 2)
    mail.outbox.clear()

    progress = policy_announce_send(number=version.number)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [notices[2].user.email, notices[3].user.email]
    )
    assert str(progress) == "3 / 4"  # the live sender's row is left to it


def test_staff_see_the_progress_in_the_back_office(
    staff_client: Client, staff: User, people: list[User]
) -> None:
    version = publish(staff, significant=True, summary="Retention changed.")
    first = PolicyNotice.objects.filter(version=version).order_by("id").first()
    PolicyNotice.objects.filter(pk=first.pk).update(sent_at=timezone.now())  # type: ignore[union-attr]

    listing = staff_client.get("/admin/privacy/policyversion/").content.decode()
    assert "1 / 4" in listing
    detail = staff_client.get("/admin/privacy/policyversion/1/change/").content.decode()
    assert "1 / 4" in detail


def test_staff_resume_an_announcement_and_a_finished_one_is_refused(
    staff: User, people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    version = publish(staff, significant=True, summary="Retention changed.")  # not run
    with pytest.raises(Conflict, match="already waiting for a worker"):
        policy_announce_resume(staff=staff, version=version)
    # The worker took the task and gave up (a long mail outage): staff send the rest.
    OutboxMessage.objects.update(started_at=timezone.now())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        progress = policy_announce_resume(staff=staff, version=version)
    assert str(progress) == "0 / 4" and len(mail.outbox) == 4
    assert AuditEvent.objects.filter(verb="privacy.policy_announce_resumed").count() == 1
    with pytest.raises(Conflict, match="Everyone was already emailed about version 1"):
        policy_announce_resume(staff=staff, version=version)
    with pytest.raises(NotAllowed):
        policy_announce_resume(staff=people[0], version=version)


# ------------------------------------------------------------ banner and export


def test_the_banner_shows_on_every_page_until_acknowledged(
    client: Client, staff: User, people: list[User]
) -> None:
    ada = people[0]
    client.force_login(ada)
    publish(staff, significant=True, summary="Retention changed.")

    for path in ("/privacy/", "/privacy/center/", "/teams/", "/accounts/profile/"):
        html = client.get(path).content.decode()
        assert 'id="policy-banner"' in html, path
        assert 'action="/privacy/policy/acknowledge/"' in html
        assert '<button type="submit" class="button">I have read it</button>' in html

    response = client.post(
        "/privacy/policy/acknowledge/", {"version": "1", "next": "/privacy/center/"}
    )
    assert response.status_code == 302 and response["Location"] == "/privacy/center/"
    ack = PolicyAcknowledgement.objects.get()
    assert (ack.user_id, ack.version_id) == (ada.pk, 1)
    assert timezone.now() - ack.created_at < timedelta(minutes=1)
    after = client.get("/privacy/center/").content.decode()
    assert "policy-banner" not in after
    assert "we noted that you have seen the change" in after

    # Another person still sees it; the banner follows the newest significant version.
    cache.clear()
    client.force_login(people[1])
    assert "policy-banner" in client.get("/privacy/").content.decode()


def test_visitors_and_accounts_made_after_the_change_see_no_banner(
    client: Client, staff: User
) -> None:
    publish(staff, significant=True, summary="Retention changed.")
    assert "policy-banner" not in client.get("/privacy/").content.decode()
    newcomer = UserFactory(email="new@example.com")
    client.force_login(newcomer)
    assert "policy-banner" not in client.get("/privacy/").content.decode()
    assert policy_banner_for(user=newcomer) is None


def test_acknowledging_twice_keeps_the_first_acknowledgement(
    staff: User, people: list[User]
) -> None:
    publish(staff, significant=True, summary="Retention changed.")
    first = policy_acknowledge(user=people[0], number=1)
    again = policy_acknowledge(user=people[0], number=1)
    assert first.pk == again.pk and PolicyAcknowledgement.objects.count() == 1
    assert AuditEvent.objects.filter(verb="privacy.policy_acknowledged").count() == 1


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("", "That version was not understood."),
        ("abc", "That version was not understood."),
        ("1e3", "That version was not understood."),
        ("99", "There is no such version of the privacy policy."),
        ("1", "Only significant changes are acknowledged"),
    ],
)
def test_a_bad_acknowledgement_is_refused_with_a_message(
    client: Client, staff: User, people: list[User], version: str, message: str
) -> None:
    publish(staff, significant=False)
    client.force_login(people[0])
    response = client.post("/privacy/policy/acknowledge/", {"version": version}, follow=True)
    assert message in response.content.decode()
    assert not PolicyAcknowledgement.objects.exists()


def test_acknowledging_needs_a_sign_in_and_a_post(client: Client, staff: User) -> None:
    publish(staff, significant=True, summary="Retention changed.")
    anonymous = client.post("/privacy/policy/acknowledge/", {"version": "1"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(staff)
    assert client.get("/privacy/policy/acknowledge/").status_code == 405
    assert not PolicyAcknowledgement.objects.exists()


def test_the_acknowledgement_goes_back_only_to_this_site(
    client: Client, staff: User, people: list[User]
) -> None:
    publish(staff, significant=True, summary="Retention changed.")
    client.force_login(people[0])
    response = client.post(
        "/privacy/policy/acknowledge/", {"version": "1", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/privacy/policy/"


def test_the_acknowledgement_and_the_email_are_in_the_persons_export(
    staff: User, people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        publish(staff, significant=True, summary="Retention changed.")
    ada = people[0]
    policy_acknowledge(user=ada, number=1)
    policy_acknowledge(user=people[1], number=1)

    archive = zipfile.ZipFile(io.BytesIO(export_archive(user=ada)))
    acks = json.loads(archive.read("privacy_policyacknowledgement.json"))["records"]
    assert [(a["user"], a["version"]) for a in acks] == [(ada.pk, 1)]
    assert acks[0]["created_at"]
    notices = json.loads(archive.read("privacy_policynotice.json"))["records"]
    assert [(n["version"], bool(n["sent_at"])) for n in notices] == [(1, True)]


def test_the_privacy_page_and_the_privacy_center_link_the_policy(
    client: Client, people: list[User]
) -> None:
    link = '<a href="/privacy/policy/">'
    public = client.get("/privacy/").content.decode()
    assert f"Read {link}our privacy policy</a>" in public
    client.force_login(people[0])
    assert f"{link}Privacy policy</a> ·" in client.get("/privacy/center/").content.decode()


def test_the_banner_appears_as_soon_as_a_significant_version_is_published(
    client: Client, staff: User, people: list[User], django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(people[0])
    assert "policy-banner" not in client.get("/privacy/").content.decode()  # remembered: none
    with django_capture_on_commit_callbacks(execute=True):
        publish(staff, significant=True, summary="Retention changed.")
    assert 'id="policy-banner"' in client.get("/privacy/").content.decode()

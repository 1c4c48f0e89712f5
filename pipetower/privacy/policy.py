"""Privacy policy versions, their announcement and their acknowledgement.

Writes (`policy_version_publish`, `policy_announce_send`, `policy_announce_resume`,
`policy_acknowledge`) follow the usual shape: check, write, audit in one
transaction. Reads (`policy_current`, `policy_banner_for`, ...) are plain
selectors for the public pages, the banner and the back office.

A significant version is announced by email to every account that was active
when it was published: one `PolicyNotice` row per recipient is written in the
publishing transaction, and `policy_announce_task` (queued through the outbox)
sends them. A sender claims a row before sending and marks it sent after, so
two workers never send the same row, and a sender that crashed leaves rows the
next run picks up: everyone is emailed once. The one window left (the mail was
handed to the mail server, the crash came before "sent" was written) resends
that one email after `CLAIM_LEASE`, with the same Message-ID, which mail
providers use to drop duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue, outbox_pending
from pipetower.privacy.models import PolicyAcknowledgement, PolicyNotice, PolicyVersion
from pipetower.privacy.services import NoticeKind, notice_message

if TYPE_CHECKING:
    from pipetower.accounts.models import User

TEXT_MAX = 200_000
SUMMARY_MAX = 2_000
# How long a claimed notice belongs to its sender before another may take it.
CLAIM_LEASE = timedelta(minutes=5)
SEND_BATCH = 100
# What the banner asks on every page, cached for everyone (cleared on publish).
_LATEST_KEY = "privacy.policy.latest_significant"
_LATEST_SECONDS = 300
_ACK_SECONDS = 24 * 3600


def _ack_key(user_id: int, number: int) -> str:
    return f"privacy.policy.ack:{user_id}:{number}"


def policy_announce_subject(number: int) -> str:
    """How the outbox names a version's announcement (see core.outbox.outbox_pending)."""
    return f"privacy.policy_announce:{number}"


def _normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n").strip()


# ------------------------------------------------------------------ publishing


def policy_publish_refusal(*, actor: Any) -> str | None:
    """Why `actor` may not publish a policy version, or None (pages and admin ask it too)."""
    if not getattr(actor, "is_authenticated", False) or not getattr(actor, "is_staff", False):
        return "Only Pipetower staff publish the privacy policy."
    return None


def policy_version_publish(
    *,
    staff: User,
    text: str,
    summary: str,
    significant: bool,
    request: HttpRequest | None = None,
) -> PolicyVersion:
    """Publish the next version of the privacy policy. It never changes afterwards.

    A significant version is announced: every active account gets a service
    notice by email (queued here, sent by `policy_announce_task`), and
    signed-in people see a banner until they acknowledge it."""
    from pipetower.accounts.models import User
    from pipetower.privacy.tasks import policy_announce_task

    refusal = policy_publish_refusal(actor=staff)
    if refusal:
        raise NotAllowed(refusal)
    text, summary = _normalise(text), summary.strip()
    if not text:
        raise ServiceError("Write the text of the policy.", field="text")
    if len(text) > TEXT_MAX:
        raise ServiceError(
            f"The policy is too long: at most {TEXT_MAX:,} characters.", field="text"
        )
    if not summary:
        raise ServiceError(
            "Say in a few sentences what changed: readers see it in the list of versions "
            "and in the announcement.",
            field="summary",
        )
    if len(summary) > SUMMARY_MAX:
        raise ServiceError(f"Keep the summary under {SUMMARY_MAX:,} characters.", field="summary")
    with transaction.atomic():
        current = PolicyVersion.objects.select_for_update().order_by("-number").first()
        if current is not None and current.text == text:
            raise Conflict(
                f"This text is identical to the current version (version {current.number}), "
                "so there is nothing to publish. Change the text, or keep the current version.",
                field="text",
            )
        number = (current.number if current else 0) + 1
        try:
            with transaction.atomic():
                version = PolicyVersion.objects.create(
                    number=number,
                    text=text,
                    summary=summary,
                    significant=significant,
                    published_by=staff,
                )
        except IntegrityError:
            raise Conflict(
                f"Version {number} was published by someone else a moment ago. "
                "Read it before publishing yours."
            ) from None
        audit_record(
            actor=staff,
            verb="privacy.policy_published",
            target=version,
            request=request,
            data={"number": number, "significant": significant},
        )
        if significant:
            recipients = User.objects.filter(is_active=True).order_by("pk")
            PolicyNotice.objects.bulk_create(
                [
                    PolicyNotice(version=version, user_id=pk)
                    for pk in recipients.values_list("pk", flat=True)
                ],
                batch_size=1000,
            )
            outbox_enqueue(policy_announce_task, number, subject=policy_announce_subject(number))
        transaction.on_commit(lambda: cache.delete(_LATEST_KEY))
    return version


# ---------------------------------------------------------------- announcement


@dataclass(frozen=True)
class AnnounceProgress:
    sent: int
    total: int

    @property
    def done(self) -> bool:
        return self.sent >= self.total

    def __str__(self) -> str:
        return f"{self.sent} / {self.total}"


def policy_announce_progress(*, number: int) -> AnnounceProgress:
    counts = PolicyNotice.objects.filter(version_id=number).aggregate(
        total=Count("id"), sent=Count("id", filter=Q(sent_at__isnull=False))
    )
    return AnnounceProgress(sent=counts["sent"], total=counts["total"])


def _claimable(now: datetime) -> Q:
    return Q(sent_at__isnull=True) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)
    )


def _message_domain() -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "localhost"


def _announcement_body(version: PolicyVersion, name: str) -> str:
    page = settings.BASE_URL + reverse("privacy:policy_version", args=[version.number])
    listing = settings.BASE_URL + reverse("privacy:policy")
    return (
        f"Hello {name},\n\n"
        f"On {version.published_at:%d %B %Y} we published version {version.number} of "
        "Pipetower's privacy policy. It changes how we handle personal data in a way "
        "we think you should know about.\n\n"
        f"What changed:\n{version.summary}\n\n"
        f"Read the whole policy: {page}\n"
        f"Every earlier version stays online: {listing}\n"
    )


def policy_announce_send(*, number: int, batch: int = SEND_BATCH) -> AnnounceProgress:
    """Send the announcement of version `number` to everyone not yet emailed.

    Safe to run again, and at the same time as another sender: each row is
    claimed before its email goes out. A send that fails releases its claim and
    raises, so the task's retry (or `policy_announce_resume`) carries on from
    there. Answers the progress afterwards."""
    version = PolicyVersion.objects.get(pk=number)
    subject = f"our privacy policy changed (version {number})"
    domain = _message_domain()
    while True:
        ids = list(
            PolicyNotice.objects.filter(_claimable(timezone.now()), version_id=number)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        for notice_id in ids:
            now = timezone.now()
            claimed = PolicyNotice.objects.filter(_claimable(now), pk=notice_id).update(
                claimed_at=now
            )
            if not claimed:
                continue  # another sender took it
            person = PolicyNotice.objects.select_related("user").get(pk=notice_id).user
            message = notice_message(
                kind=NoticeKind.POLICY,
                subject=subject,
                body=_announcement_body(version, person.display_name),
                to=person.email,
                **{"Message-ID": f"<policy-{number}-notice-{notice_id}@{domain}>"},
            )
            try:
                message.send()
            except BaseException:
                PolicyNotice.objects.filter(pk=notice_id).update(claimed_at=None)
                raise
            PolicyNotice.objects.filter(pk=notice_id).update(sent_at=timezone.now())
    return policy_announce_progress(number=number)


def policy_announce_resume(
    *, staff: User, version: PolicyVersion, request: HttpRequest | None = None
) -> AnnounceProgress:
    """Staff queue the rest of an announcement again (after a mail outage)."""
    from pipetower.privacy.tasks import policy_announce_task

    refusal = policy_publish_refusal(actor=staff)
    if refusal:
        raise NotAllowed(refusal)
    if not version.significant:
        raise ServiceError("Only a significant version is announced by email.")
    with transaction.atomic():
        progress = policy_announce_progress(number=version.number)
        if progress.done:
            raise Conflict(f"Everyone was already emailed about version {version.number}.")
        if outbox_pending(policy_announce_subject(version.number)):
            raise Conflict(f"Version {version.number} is already waiting for a worker to send it.")
        outbox_enqueue(
            policy_announce_task, version.number, subject=policy_announce_subject(version.number)
        )
        audit_record(
            actor=staff,
            verb="privacy.policy_announce_resumed",
            target=version,
            request=request,
            data={"sent": progress.sent, "total": progress.total},
        )
    return progress


# ------------------------------------------------------------- acknowledgement


def policy_acknowledge(
    *, user: User, number: int, request: HttpRequest | None = None
) -> PolicyAcknowledgement:
    """Record that `user` has seen significant version `number`; a second click
    answers the first acknowledgement."""
    version = PolicyVersion.objects.filter(pk=number).first()
    if version is None:
        raise ServiceError("There is no such version of the privacy policy.", field="version")
    if not version.significant:
        raise ServiceError(
            "Only significant changes are acknowledged; this version needs nothing from you.",
            field="version",
        )
    with transaction.atomic():
        existing = PolicyAcknowledgement.objects.filter(user=user, version=version).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                ack = PolicyAcknowledgement.objects.create(user=user, version=version)
        except IntegrityError:  # a second click raced the first
            return PolicyAcknowledgement.objects.get(user=user, version=version)
        audit_record(
            actor=user,
            verb="privacy.policy_acknowledged",
            target=version,
            request=request,
        )
    transaction.on_commit(lambda: cache.set(_ack_key(user.pk, number), True, _ACK_SECONDS))
    return ack


# ------------------------------------------------------------------- selectors


def policy_current() -> PolicyVersion | None:
    return PolicyVersion.objects.order_by("-number").first()


def policy_versions() -> QuerySet[PolicyVersion]:
    """Every published version, newest first (for the public list)."""
    return PolicyVersion.objects.order_by("-number").defer("text")


def policy_version_get(*, number: int) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(pk=number).first()


def policy_versions_for_staff() -> QuerySet[PolicyVersion]:
    """Versions with their announcement counts, in one query (the back office list)."""
    return PolicyVersion.objects.annotate(
        notices_total=Count("notices"),
        notices_sent=Count("notices", filter=Q(notices__sent_at__isnull=False)),
    )


@dataclass(frozen=True)
class Banner:
    number: int
    published_at: datetime


def _latest_significant() -> Banner | None:
    cached = cache.get(_LATEST_KEY)
    if cached is None:
        row = (
            PolicyVersion.objects.filter(significant=True)
            .order_by("-number")
            .values_list("number", "published_at")
            .first()
        )
        cached = list(row) if row else []
        cache.set(_LATEST_KEY, cached, _LATEST_SECONDS)
    return Banner(number=cached[0], published_at=cached[1]) if cached else None


def policy_banner_for(*, user: Any) -> Banner | None:
    """The significant version `user` has not acknowledged yet, if any.

    Only the latest significant version counts, and only if it was published
    after the account was made (a new account agreed to it when signing up).
    Costs no query for visitors, nor once a person has acknowledged it."""
    if not getattr(user, "is_authenticated", False):
        return None
    latest = _latest_significant()
    if latest is None or latest.published_at <= user.date_joined:
        return None
    key = _ack_key(user.pk, latest.number)
    if cache.get(key):
        return None
    if PolicyAcknowledgement.objects.filter(user=user, version_id=latest.number).exists():
        cache.set(key, True, _ACK_SECONDS)
        return None
    return latest

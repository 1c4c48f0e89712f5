"""Rights requests: filed by people with or without an account, answered within
30 days of receipt (docs/privacy.md, "Your requests").

Lifecycle: unconfirmed (a visitor has not yet typed the emailed code) → open
(received: the 30 days run from here) → in progress → done or denied. One
extension at most, with a reason the person is told, before the deadline.
Staff are reminded at day 20 and day 25. Every write here follows the services
shape: lock, re-read, refusal check, write, audit, mail after commit."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.privacy.models import (
    ANSWER_WITHIN_DAYS,
    EXTENSION_DAYS,
    Channel,
    DataSubjectRequest,
    Purpose,
)

if TYPE_CHECKING:
    from pipetower.accounts.models import User

DETAILS_MIN = 10
DETAILS_MAX = 5000
REASON_MIN = 10
CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=30)
CODE_MAX_ATTEMPTS = 5
# A visitor's request never confirmed is deleted after this long (with its address).
UNCONFIRMED_KEPT_FOR = timedelta(days=2)
REMINDER_DAYS = (20, 25)
_CODE_SALT = "pipetower.privacy.request-code"
_PENDING_SALT = "pipetower.privacy.request-pending"

Status = DataSubjectRequest.Status


def _absolute(path: str) -> str:
    return settings.BASE_URL + path


def _mail_after_commit(*, to: str | list[str], subject: str, body: str) -> None:
    message = EmailMessage(
        subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject,
        body=body,
        to=[to] if isinstance(to, str) else to,
    )
    transaction.on_commit(message.send, robust=True)


def _kind_label(dsr: DataSubjectRequest) -> str:
    return dsr.get_kind_display().split(":")[0]


def _staff_check(staff: User) -> None:
    if not getattr(staff, "is_staff", False):
        raise NotAllowed("Only Pipetower staff handle privacy requests.")


def _kind_and_details(kind: str, details: str) -> tuple[DataSubjectRequest.Kind, str]:
    try:
        kind_enum = DataSubjectRequest.Kind(kind)
    except ValueError:
        raise ServiceError("Choose what your request is about.", field="kind") from None
    details = details.strip()
    if len(details) < DETAILS_MIN:
        raise ServiceError(
            "Tell us a little more, so we can act on your request (at least 10 characters).",
            field="details",
        )
    if len(details) > DETAILS_MAX:
        raise ServiceError("Please keep it under 5,000 characters.", field="details")
    return kind_enum, details


def _received_notice(dsr: DataSubjectRequest, *, name: str) -> None:
    follow = (
        f"You can follow it in your privacy center: {_absolute(reverse('privacy:requests'))}\n"
        if dsr.user_id is not None
        else "We will write to you at this address when we answer it.\n"
    )
    _mail_after_commit(
        to=dsr.reply_to,
        subject=f"We received your request ({_kind_label(dsr)})",
        body=(
            f"Hello {name},\n\nWe received your request and will answer "
            f"by {dsr.due_at:%d %B %Y} at the latest.\n{follow}"
        ),
    )


def _locked(dsr: DataSubjectRequest) -> DataSubjectRequest:
    return DataSubjectRequest.objects.select_for_update().get(pk=dsr.pk)


def _copy_back(dsr: DataSubjectRequest, locked: DataSubjectRequest) -> DataSubjectRequest:
    for field in DataSubjectRequest._meta.concrete_fields:
        setattr(dsr, field.attname, getattr(locked, field.attname))
    return dsr


# ------------------------------------------------------------------ filing


def data_subject_request_create(
    *, user: User, kind: str, details: str, request: HttpRequest | None = None
) -> DataSubjectRequest:
    """A signed-in person's request: received at once (their address is known)."""
    kind_enum, details = _kind_and_details(kind, details)
    now = timezone.now()
    with transaction.atomic():
        dsr = DataSubjectRequest.objects.create(
            user=user,
            kind=kind_enum,
            details=details,
            status=Status.OPEN,
            created_at=now,
            received_at=now,
            due_at=now + timedelta(days=ANSWER_WITHIN_DAYS),
        )
        audit_record(
            actor=user,
            verb="privacy.request_created",
            target=dsr,
            request=request,
            data={"kind": kind_enum.value},
        )
    _received_notice(dsr, name=user.display_name)
    return dsr


def _code_hash(dsr_id: int, code: str) -> str:
    return salted_hmac(_CODE_SALT, f"{dsr_id}:{code}", algorithm="sha256").hexdigest()


def data_subject_request_pending_token(*, dsr: DataSubjectRequest) -> str:
    """Names an unconfirmed request in the confirmation page's address (not guessable)."""
    return signing.dumps({"r": dsr.pk}, salt=_PENDING_SALT, compress=True)


def data_subject_request_pending_get(*, token: str) -> DataSubjectRequest:
    try:
        data = signing.loads(token, salt=_PENDING_SALT, max_age=UNCONFIRMED_KEPT_FOR)
    except signing.BadSignature:  # includes an expired link
        raise Gone(
            "This confirmation page is no longer valid. Please send your request again."
        ) from None
    dsr = DataSubjectRequest.objects.filter(pk=data.get("r")).first()
    if dsr is None:
        raise Gone("This request no longer exists. Please send it again.")
    return dsr


def data_subject_request_file(
    *, email: str, kind: str, details: str, request: HttpRequest | None = None
) -> DataSubjectRequest:
    """A request from someone without an account (or not signed in). It waits,
    unconfirmed, until they type the code emailed to the address they gave; the
    30 days start then."""
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError(
            "Enter the email address we should answer, such as name@example.com.", field="email"
        ) from None
    if len(email) > 254:
        raise ServiceError("This email address is too long.", field="email")
    kind_enum, details = _kind_and_details(kind, details)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    now = timezone.now()
    with transaction.atomic():
        dsr = DataSubjectRequest.objects.create(
            email=email,
            kind=kind_enum,
            details=details,
            status=Status.UNCONFIRMED,
            created_at=now,
            code_expires_at=now + CODE_VALID_FOR,
        )
        dsr.code_hash = _code_hash(dsr.pk, code)
        dsr.save(update_fields=["code_hash"])
        audit_record(
            actor=None,
            verb="privacy.request_filed",
            target=dsr,
            request=request,
            data={"kind": kind_enum.value},
        )
    _mail_after_commit(
        to=email,
        subject="Your confirmation code for your privacy request",
        body=(
            "Hello,\n\nSomeone, probably you, sent Pipetower a privacy request from this "
            f"address. To confirm it, type this code on the page that asked for it:\n\n"
            f"    {code}\n\nThe code works for 30 minutes. We answer within 30 days of "
            "your confirmation.\nIf you did not send a request, ignore this email: "
            "nothing happens and the request is deleted.\n"
        ),
    )
    return dsr


def data_subject_request_confirm(
    *, dsr: DataSubjectRequest, code: str, request: HttpRequest | None = None
) -> DataSubjectRequest:
    """Check the emailed code. Right: the request is received and the 30 days run.
    Wrong: one attempt fewer; after five, or once expired, the code no longer works."""
    code = "".join(code.split())
    wrong: ServiceError | None = None
    with transaction.atomic():
        locked = _locked(dsr)
        if locked.status != Status.UNCONFIRMED:
            raise Conflict("This request is already confirmed. We will answer it by email.")
        if locked.code_attempts >= CODE_MAX_ATTEMPTS:
            raise Gone(
                "Too many wrong codes: this code no longer works. Please send your request again."
            )
        now = timezone.now()
        if locked.code_expires_at is None or locked.code_expires_at <= now:
            raise Gone("This code has expired. Please send your request again for a new code.")
        if not code:
            raise ServiceError("Type the code from the email we sent you.", field="code")
        if not constant_time_compare(_code_hash(locked.pk, code), locked.code_hash):
            # The attempt is counted (committed) before the refusal is raised.
            locked.code_attempts += 1
            locked.save(update_fields=["code_attempts"])
            left = CODE_MAX_ATTEMPTS - locked.code_attempts
            wrong = (
                Gone(
                    "Too many wrong codes: this code no longer works. "
                    "Please send your request again."
                )
                if left <= 0
                else ServiceError(
                    f"That code is not right. Check the email and try again ({left} "
                    f"{'try' if left == 1 else 'tries'} left).",
                    field="code",
                )
            )
        else:
            locked.status = Status.OPEN
            locked.received_at = now
            locked.due_at = now + timedelta(days=ANSWER_WITHIN_DAYS)
            locked.code_hash = ""
            locked.code_expires_at = None
            locked.save(
                update_fields=["status", "received_at", "due_at", "code_hash", "code_expires_at"]
            )
            audit_record(
                actor=None, verb="privacy.request_confirmed", target=locked, request=request
            )
    if wrong is not None:
        _copy_back(dsr, locked)
        raise wrong
    _received_notice(locked, name="there")
    return _copy_back(dsr, locked)


def data_subject_request_record_fulfilled(
    *, user: User, kind: str, details: str, request: HttpRequest | None = None
) -> DataSubjectRequest:
    """Record something the person did themselves (an export, a deletion, a consent
    change) as a request received and fulfilled at once, so the request register
    is complete."""
    kind_enum = DataSubjectRequest.Kind(kind)
    now = timezone.now()
    dsr = DataSubjectRequest.objects.create(
        user=user,
        kind=kind_enum,
        details=details,
        source=DataSubjectRequest.Source.SELF_SERVICE,
        status=Status.DONE,
        answer="Done by you in your privacy center.",
        created_at=now,
        received_at=now,
        due_at=now + timedelta(days=ANSWER_WITHIN_DAYS),
        answered_at=now,
    )
    audit_record(
        actor=user,
        verb="privacy.request_self_served",
        target=dsr,
        request=request,
        data={"kind": kind_enum.value},
    )
    return dsr


# ------------------------------------------------------------------ staff


def data_subject_request_start(*, staff: User, dsr: DataSubjectRequest) -> DataSubjectRequest:
    """Staff take up a received request."""
    _staff_check(staff)
    with transaction.atomic():
        locked = _locked(dsr)
        if locked.status != Status.OPEN:
            raise Conflict(
                f"Only a received request can be started; this one is "
                f"{locked.get_status_display().lower()}."
            )
        locked.status = Status.IN_PROGRESS
        locked.save(update_fields=["status"])
        audit_record(actor=staff, verb="privacy.request_started", target=locked)
    return _copy_back(dsr, locked)


def data_subject_request_extend(
    *, staff: User, dsr: DataSubjectRequest, reason: str
) -> DataSubjectRequest:
    """Extend the deadline once, by up to two months, before it passes. The person
    is told why, and the new date."""
    _staff_check(staff)
    reason = reason.strip()
    if len(reason) < REASON_MIN:
        raise ServiceError(
            "Give the reason for the extension; the person will read it (at least 10 characters).",
            field="reason",
        )
    with transaction.atomic():
        locked = _locked(dsr)
        if not locked.is_open:
            raise Conflict("Only a request waiting for an answer can be extended.")
        if locked.extended_at is not None:
            raise Conflict("This request was already extended once; it cannot be extended again.")
        now = timezone.now()
        if locked.due_at is None or locked.due_at <= now:
            raise Conflict(
                "The deadline has passed: an extension must be given before it. "
                "Answer the request now."
            )
        locked.extended_at = now
        locked.extension_reason = reason
        locked.due_at = locked.due_at + timedelta(days=EXTENSION_DAYS)
        locked.save(update_fields=["extended_at", "extension_reason", "due_at"])
        audit_record(
            actor=staff,
            verb="privacy.request_extended",
            target=locked,
            data={"due_at": locked.due_at.isoformat()},
        )
        _mail_after_commit(
            to=locked.reply_to,
            subject=f"We need more time for your request ({_kind_label(locked)})",
            body=(
                "Hello,\n\nWe are working on your request but need more time to answer "
                f"it fully. We will answer by {locked.due_at:%d %B %Y} at the latest.\n\n"
                f"Why: {reason}\n\n{complaint_route()}\n"
            ),
        )
    return _copy_back(dsr, locked)


def complaint_route() -> str:
    return (
        "If you are not satisfied, you can complain to the data-protection supervisory "
        f"authority where you live or work. {settings.PRIVACY_COMPLAINT_ROUTE}".strip()
    )


def data_subject_request_answer(
    *, staff: User, dsr: DataSubjectRequest, status: str, answer: str
) -> DataSubjectRequest:
    """Staff close a request: done (with the answer) or denied (with the reason).
    The person is emailed the answer; a denial names the complaint route."""
    _staff_check(staff)
    if status not in (Status.DONE, Status.REJECTED):
        raise ServiceError("An answer closes the request as answered or denied.", field="status")
    answer = answer.strip()
    if not answer:
        if status == Status.REJECTED:
            raise ServiceError(
                "A denial needs the reason; the person will read it.", field="answer"
            )
        raise ServiceError("Write the answer the person will read.", field="answer")
    with transaction.atomic():
        locked = _locked(dsr)
        if not locked.is_open:
            raise Conflict("This request was already answered.")
        locked.status = status
        locked.answer = answer
        locked.answered_at = timezone.now()
        locked.save(update_fields=["status", "answer", "answered_at"])
        audit_record(
            actor=staff, verb="privacy.request_answered", target=locked, data={"status": status}
        )
        _answer_mail(locked)
    return _copy_back(dsr, locked)


def _answer_mail(dsr: DataSubjectRequest) -> None:
    if dsr.status == Status.REJECTED:
        subject = f"We cannot do what you asked ({_kind_label(dsr)})"
        body = (
            "Hello,\n\nWe looked at your request and cannot carry it out.\n\n"
            f"Why: {dsr.answer}\n\n{complaint_route()}\n"
        )
    else:
        subject = f"Your request is answered ({_kind_label(dsr)})"
        body = f"Hello,\n\nHere is our answer to your request:\n\n{dsr.answer}\n"
    _mail_after_commit(to=dsr.reply_to, subject=subject, body=body)


def data_subject_request_objection_fulfil(
    *, staff: User, dsr: DataSubjectRequest, purposes: Iterable[str]
) -> DataSubjectRequest:
    """Fulfil an objection in one step: switch off the optional purposes concerned
    for the person, and answer the request saying which."""
    from pipetower.privacy.consent import WORDING_VERSIONS, consent_set

    _staff_check(staff)
    chosen = sorted(set(purposes))
    if not chosen:
        raise ServiceError("Choose the uses of data the person objects to.", field="purposes")
    unknown = [p for p in chosen if p not in Purpose.values]
    if unknown:
        raise ServiceError(f"Unknown purpose: {', '.join(unknown)}.", field="purposes")
    with transaction.atomic():
        locked = _locked(dsr)
        if locked.kind != DataSubjectRequest.Kind.OBJECTION:
            raise ServiceError("Only an objection is fulfilled by switching purposes off.")
        if locked.user is None:
            raise Conflict(
                "This person has no account, so there is nothing to switch off; answer "
                "the request instead."
            )
        if not locked.is_open:
            raise Conflict("This request was already answered.")
        for purpose in chosen:
            consent_set(
                user=locked.user,
                purpose=purpose,
                granted=False,
                channel=Channel.STAFF,
                wording_version=WORDING_VERSIONS[purpose],
            )
        labels = ", ".join(Purpose(p).label for p in chosen)
        locked.status = Status.DONE
        locked.answer = f"We stopped using your data for: {labels}."
        locked.answered_at = timezone.now()
        locked.save(update_fields=["status", "answer", "answered_at"])
        audit_record(
            actor=staff,
            verb="privacy.request_answered",
            target=locked,
            data={"status": Status.DONE, "purposes_off": chosen},
        )
        _answer_mail(locked)
    return _copy_back(dsr, locked)


# ------------------------------------------------------------------ housekeeping


def data_subject_requests_remind(*, now: datetime | None = None) -> int:
    """Email staff about open requests that reached day 20 or day 25 since
    receipt; each reminder goes once (claimed by a conditional update, so two
    schedulers never both send it). Answers how many reminders were sent."""
    from pipetower.accounts.models import User

    now = now or timezone.now()
    staff = list(
        User.objects.filter(is_staff=True, is_active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )
    sent = 0
    for day in REMINDER_DAYS:
        field = f"reminded_day{day}_at"
        due = DataSubjectRequest.objects.filter(
            status__in=(Status.OPEN, Status.IN_PROGRESS),
            received_at__lte=now - timedelta(days=day),
            **{f"{field}__isnull": True},
        ).order_by("due_at", "pk")
        for dsr in due:
            with transaction.atomic():
                claimed = DataSubjectRequest.objects.filter(
                    pk=dsr.pk, **{f"{field}__isnull": True}
                ).update(**{field: now})
                if not claimed:
                    continue
                # Day 20 is skipped once day 25 is reached: one reminder, the later one.
                if day == 20 and dsr.received_at and dsr.received_at <= now - timedelta(days=25):
                    continue
                audit_record(
                    actor=None, verb="privacy.request_reminded", target=dsr, data={"day": day}
                )
                if staff:
                    link = _absolute(
                        reverse("admin:privacy_datasubjectrequest_change", args=[dsr.pk])
                    )
                    _mail_after_commit(
                        to=staff,
                        subject=f"Privacy request {dsr.pk}: day {day}, {dsr.days_left} days left",
                        body=(
                            f"Privacy request {dsr.pk} ({_kind_label(dsr)}) was received "
                            f"{day} days ago and is due on {dsr.due_at:%d %B %Y}.\n"
                            f"Status: {dsr.get_status_display()}.\n{link}\n"
                        ),
                    )
                sent += 1
    return sent


def data_subject_requests_unconfirmed_purge(*, now: datetime | None = None) -> int:
    """Delete visitors' requests never confirmed (and the address they typed)."""
    now = now or timezone.now()
    deleted, _ = DataSubjectRequest.objects.filter(
        status=Status.UNCONFIRMED, created_at__lt=now - UNCONFIRMED_KEPT_FOR
    ).delete()
    return deleted

"""The public list of subprocessors, and mail to the people who follow it.

Staff keep the list in the back office (`privacy/admin.py`), which calls the
services here: `subprocessor_add`, `subprocessor_change` and
`subprocessor_remove` each check the staff member, lock and re-read the row,
write it, write an audit row and a `SubprocessorChange` saying in plain words
what changed, and queue `subprocessor_change_send_task` through the outbox in
the same transaction. The task mails every confirmed subscriber.

Anyone may follow the list, with or without an account. Subscribing is double
opt-in: `subscription_request` only mails a signed confirmation link (the
address is stored nowhere until then); `subscription_confirm` stores the
address. Every mail carries a signed unsubscribe link (`subscription_cancel`),
which also answers mail clients' one-click unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.privacy.models import Subprocessor, SubprocessorChange, SubprocessorSubscriber
from pipetower.privacy.tasks import subprocessor_change_send_task

if TYPE_CHECKING:
    from pipetower.accounts.models import User

CONFIRM_LINK_MAX_AGE = timedelta(days=3)
_CONFIRM_SALT = "pipetower.privacy.subprocessors.confirm"
_UNSUBSCRIBE_SALT = "pipetower.privacy.subprocessors.unsubscribe"
FIELD_LABELS = {"name": "Name", "purpose": "Purpose", "location": "Location", "since": "Since"}


def _absolute(path: str) -> str:
    return settings.BASE_URL + path


def _subject(text: str) -> str:
    return settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + text


# ------------------------------------------------------------------- the list


def staff_refusal(*, actor: Any) -> str | None:
    """Why `actor` may not change the list (None when they may)."""
    if not getattr(actor, "is_authenticated", False) or not actor.is_staff:
        return "Only Pipetower staff keep the list of subprocessors."
    return None


@dataclass(frozen=True)
class SubprocessorFields:
    name: str
    purpose: str
    location: str
    since: date


def subprocessor_fields_check(
    *, name: str, purpose: str, location: str, since: date | None, exclude_id: int | None = None
) -> SubprocessorFields:
    """The fields of a row as they will be stored, or the first problem with them."""
    name, purpose, location = name.strip(), purpose.strip(), location.strip()
    if not name:
        raise ServiceError("Give the subprocessor's name.", field="name")
    if len(name) > 200:
        raise ServiceError("Keep the name under 200 characters.", field="name")
    if not purpose:
        raise ServiceError(
            "Say what the subprocessor does with personal data, e.g. sending email.",
            field="purpose",
        )
    if len(purpose) > 500:
        raise ServiceError("Keep the purpose under 500 characters.", field="purpose")
    if not location:
        raise ServiceError(
            "Say where the data is processed, e.g. a country or region.", field="location"
        )
    if len(location) > 200:
        raise ServiceError("Keep the location under 200 characters.", field="location")
    if since is None:
        raise ServiceError("Give the date it started (or starts) processing.", field="since")
    same = Subprocessor.objects.filter(name__iexact=name)
    if exclude_id is not None:
        same = same.exclude(pk=exclude_id)
    if same.exists():
        raise Conflict(f"{name} is already listed. Change that entry instead.", field="name")
    return SubprocessorFields(name=name, purpose=purpose, location=location, since=since)


def _record_change(*, kind: str, name: str, summary: str) -> SubprocessorChange:
    """Keep the change and queue the mail to subscribers (inside the caller's transaction)."""
    change = SubprocessorChange.objects.create(kind=kind, name=name, summary=summary)
    outbox_enqueue(
        subprocessor_change_send_task,
        change.pk,
        subject=f"privacy.subprocessor_change:{change.pk}",
    )
    return change


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _describe(fields: SubprocessorFields) -> str:
    return f"Purpose: {fields.purpose}\nLocation: {fields.location}\nSince: {_day(fields.since)}"


def subprocessor_add(
    *,
    actor: User,
    name: str,
    purpose: str,
    location: str,
    since: date | None,
    request: HttpRequest | None = None,
) -> Subprocessor:
    refusal = staff_refusal(actor=actor)
    if refusal:
        raise NotAllowed(refusal)
    with transaction.atomic():
        fields = subprocessor_fields_check(
            name=name, purpose=purpose, location=location, since=since
        )
        try:
            with transaction.atomic():
                sub = Subprocessor.objects.create(
                    name=fields.name,
                    purpose=fields.purpose,
                    location=fields.location,
                    since=fields.since,
                )
        except IntegrityError:  # another staff member added it at the same moment
            raise Conflict(f"{fields.name} is already listed.", field="name") from None
        audit_record(
            actor=actor,
            verb="privacy.subprocessor_added",
            target=sub,
            request=request,
            data={"location": sub.location, "since": sub.since.isoformat()},
        )
        _record_change(kind=SubprocessorChange.Kind.ADDED, name=sub.name, summary=_describe(fields))
    return sub


def _locked(subprocessor_id: int) -> Subprocessor:
    sub = Subprocessor.objects.select_for_update().filter(pk=subprocessor_id).first()
    if sub is None:
        raise Gone("This subprocessor is no longer listed; someone removed it meanwhile.")
    return sub


def subprocessor_change(
    *,
    actor: User,
    subprocessor_id: int,
    name: str,
    purpose: str,
    location: str,
    since: date | None,
    request: HttpRequest | None = None,
) -> Subprocessor:
    """Change a row. Saving it unchanged changes nothing and mails nobody."""
    refusal = staff_refusal(actor=actor)
    if refusal:
        raise NotAllowed(refusal)
    with transaction.atomic():
        sub = _locked(subprocessor_id)
        fields = subprocessor_fields_check(
            name=name, purpose=purpose, location=location, since=since, exclude_id=sub.pk
        )
        changes: dict[str, list[str]] = {}
        for attr in FIELD_LABELS:
            old, new = getattr(sub, attr), getattr(fields, attr)
            if old != new:
                changes[attr] = [str(old), str(new)]
                setattr(sub, attr, new)
        if not changes:
            return sub
        former_name = changes.get("name", [sub.name])[0]
        sub.updated_at = timezone.now()
        try:
            with transaction.atomic():
                sub.save(update_fields=[*changes, "updated_at"])
        except IntegrityError:  # renamed to a name another staff member just added
            raise Conflict(f"{fields.name} is already listed.", field="name") from None
        audit_record(
            actor=actor,
            verb="privacy.subprocessor_changed",
            target=sub,
            request=request,
            data={"changes": changes},
        )
        lines = []
        for attr, (old, new) in changes.items():
            if attr == "since":
                old, new = (
                    _day(date.fromisoformat(old)),
                    _day(date.fromisoformat(new)),
                )
            lines.append(f"{FIELD_LABELS[attr]}: {old} → {new}")
        _record_change(
            kind=SubprocessorChange.Kind.CHANGED, name=former_name, summary="\n".join(lines)
        )
    return sub


def subprocessor_remove(
    *, actor: User, subprocessor_id: int, request: HttpRequest | None = None
) -> None:
    refusal = staff_refusal(actor=actor)
    if refusal:
        raise NotAllowed(refusal)
    with transaction.atomic():
        sub = _locked(subprocessor_id)
        audit_record(
            actor=actor,
            verb="privacy.subprocessor_removed",
            target=sub,
            request=request,
        )
        _record_change(
            kind=SubprocessorChange.Kind.REMOVED,
            name=sub.name,
            summary=f"{sub.name} no longer processes personal data for Pipetower.",
        )
        sub.delete()


def subprocessors_listed() -> QuerySet[Subprocessor]:
    return Subprocessor.objects.order_by("name", "id")


def subprocessor_changes_recent(*, limit: int = 10) -> list[SubprocessorChange]:
    return list(SubprocessorChange.objects.order_by("-created_at", "-id")[:limit])


# ------------------------------------------------------------- change mail


def subprocessor_change_send(*, change_id: int) -> int:
    """Mail one change to every confirmed subscriber; how many were mailed.

    A change is mailed once: a second delivery of the task sends nothing."""
    with transaction.atomic():
        change = SubprocessorChange.objects.select_for_update().filter(pk=change_id).first()
        if change is None or change.sent_at is not None:
            return 0
        change.sent_at = timezone.now()
        change.save(update_fields=["sent_at"])
    page = _absolute(reverse("privacy:subprocessors"))
    verb = {"added": "added to", "changed": "changed in", "removed": "removed from"}[change.kind]
    count = 0
    for subscriber in SubprocessorSubscriber.objects.order_by("pk").iterator():
        link = unsubscribe_url(subscriber=subscriber)
        EmailMessage(
            subject=_subject(f"Subprocessor {verb} our list: {change.name}"),
            body=(
                f"Pipetower's list of subprocessors changed.\n\n"
                f"{change.get_kind_display()}: {change.name}\n{change.summary}\n\n"
                f"The whole list: {page}\n\n--\n"
                "You receive this because you asked to hear about changes to this list.\n"
                f"Unsubscribe with one click: {link}\n"
            ),
            to=[subscriber.email],
            headers={
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        ).send()
        count += 1
    SubprocessorChange.objects.filter(pk=change.pk).update(sent_count=count)
    return count


# ------------------------------------------------------------- subscriptions


def _normalised(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError(
            "Enter a valid email address, like name@example.com.", field="email"
        ) from None
    return email


def confirm_token(*, email: str) -> str:
    return signing.dumps({"e": email}, salt=_CONFIRM_SALT, compress=True)


def unsubscribe_url(*, subscriber: SubprocessorSubscriber) -> str:
    token = signing.dumps({"s": subscriber.pk, "e": subscriber.email}, salt=_UNSUBSCRIBE_SALT)
    return _absolute(reverse("privacy:subprocessors_unsubscribe", args=[token]))


def subscription_request(*, email: str) -> None:
    """Mail `email` a link to confirm the subscription. Nothing is stored.

    The page says the same whatever the address, so it tells nobody who is
    subscribed; an address already subscribed is told so by email instead."""
    email = _normalised(email)
    subscriber = SubprocessorSubscriber.objects.filter(email=email).first()
    page = _absolute(reverse("privacy:subprocessors"))
    if subscriber is not None:
        link = unsubscribe_url(subscriber=subscriber)
        body = (
            "Someone, probably you, asked to hear about changes to Pipetower's list of "
            "subprocessors. This address already receives them, so nothing changed.\n\n"
            f"The list: {page}\nUnsubscribe: {link}\n"
        )
        message = EmailMessage(
            subject=_subject("You already follow our subprocessor list"), body=body, to=[email]
        )
    else:
        link = _absolute(
            reverse("privacy:subprocessors_confirm", args=[confirm_token(email=email)])
        )
        body = (
            "Someone, probably you, asked to hear about changes to Pipetower's list of "
            "subprocessors (the companies that process personal data for us).\n\n"
            f"To confirm, open this link within 3 days:\n{link}\n\n"
            "If you did not ask, ignore this email: without your confirmation we keep "
            "nothing and send nothing more.\n"
        )
        message = EmailMessage(
            subject=_subject("Confirm: news of our subprocessors"), body=body, to=[email]
        )
    transaction.on_commit(message.send, robust=True)


def subscription_confirm_check(*, token: str) -> str:
    """The address a confirmation link names, if the link is valid."""
    try:
        data = signing.loads(token, salt=_CONFIRM_SALT, max_age=CONFIRM_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise Gone(
            "This confirmation link has expired. Subscribe again on the subprocessors page."
        ) from None
    except signing.BadSignature:
        raise NotAllowed(
            "This confirmation link is not valid. Use the link in the most recent email."
        ) from None
    return _normalised(str(data.get("e", "")))


def subscription_confirm(*, token: str) -> SubprocessorSubscriber:
    """Store the address a valid confirmation link names. Confirming twice is harmless."""
    email = subscription_confirm_check(token=token)
    with transaction.atomic():
        existing = SubprocessorSubscriber.objects.filter(email=email).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                subscriber = SubprocessorSubscriber.objects.create(email=email)
        except IntegrityError:  # the same link opened twice at once
            return SubprocessorSubscriber.objects.get(email=email)
        # No request: the activity log keeps neither the address nor where it came from.
        audit_record(actor=None, verb="privacy.subprocessor_subscribed", target=subscriber)
    return subscriber


def subscription_resolve(*, token: str) -> SubprocessorSubscriber:
    """The subscription an unsubscribe link names. The links do not expire."""
    try:
        data = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise NotAllowed(
            "This unsubscribe link is not valid. Use the link in the most recent email."
        ) from None
    subscriber = SubprocessorSubscriber.objects.filter(
        pk=data.get("s"), email=data.get("e")
    ).first()
    if subscriber is None:
        raise Gone("This address is not subscribed any more: you will get no more emails.")
    return subscriber


def subscription_cancel(*, token: str) -> None:
    """Forget the address an unsubscribe link names."""
    with transaction.atomic():
        subscriber = subscription_resolve(token=token)
        audit_record(actor=None, verb="privacy.subprocessor_unsubscribed", target=subscriber)
        subscriber.delete()

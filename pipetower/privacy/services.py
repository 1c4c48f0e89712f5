"""Writes of the privacy center: restriction of processing, rights requests,
unsubscribe links and service notices. Consent lives in `privacy.consent`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.privacy.consent import consent_set
from pipetower.privacy.models import (
    Channel,
    ProcessingRestriction,
    Purpose,
)

# Rights requests live in `privacy.rights_requests`; these two names stay importable
# from here for the callers that already use them.
from pipetower.privacy.rights_requests import (
    data_subject_request_answer as data_subject_request_answer,
)
from pipetower.privacy.rights_requests import (
    data_subject_request_create as data_subject_request_create,
)

if TYPE_CHECKING:
    from pipetower.accounts.models import User

LIFT_LINK_MAX_AGE = timedelta(days=7)
_LIFT_SALT = "pipetower.privacy.restriction-lift"
_UNSUBSCRIBE_SALT = "pipetower.privacy.unsubscribe"


def _absolute(path: str) -> str:
    return settings.BASE_URL + path


def _send_after_commit(*, to: str, subject: str, body: str, headers: Any = None) -> None:
    message = EmailMessage(
        subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject,
        body=body,
        to=[to],
        headers=headers or {},
    )
    transaction.on_commit(message.send, robust=True)


# ------------------------------------------------------------------ restriction


def restriction_start(*, user: User, request: HttpRequest | None = None) -> ProcessingRestriction:
    """Limit processing of the person's data to what the service needs, at once."""
    with transaction.atomic():
        current = ProcessingRestriction.objects.filter(user=user, lifted_at__isnull=True).first()
        if current is not None:
            return current
        try:
            with transaction.atomic():
                restriction = ProcessingRestriction.objects.create(user=user)
        except IntegrityError:  # a second click raced the first
            return ProcessingRestriction.objects.get(user=user, lifted_at__isnull=True)
        audit_record(
            actor=user, verb="privacy.restriction_started", target=restriction, request=request
        )
    return restriction


def restriction_lift_token(*, restriction: ProcessingRestriction) -> str:
    return signing.dumps(
        {"r": restriction.pk, "u": restriction.user_id}, salt=_LIFT_SALT, compress=True
    )


def restriction_lift_request(
    *, user: User, request: HttpRequest | None = None
) -> ProcessingRestriction:
    """Ask to lift the restriction. Nothing changes yet: the person gets an email
    saying the restriction is about to end, and it ends only when they confirm
    through the link in that email."""
    restriction = ProcessingRestriction.objects.filter(user=user, lifted_at__isnull=True).first()
    if restriction is None:
        raise Conflict("Processing of your data is not limited, so there is nothing to lift.")
    restriction.lift_requested_at = timezone.now()
    restriction.save(update_fields=["lift_requested_at"])
    audit_record(
        actor=user, verb="privacy.restriction_lift_requested", target=restriction, request=request
    )
    link = _absolute(
        reverse("privacy:restriction_lift", args=[restriction_lift_token(restriction=restriction)])
    )
    body = (
        f"Hello {user.display_name},\n\n"
        "You asked Pipetower to stop limiting the processing of your data. Before it "
        "happens, here is what it means: optional processing you agreed to (for example "
        "the newsletter or surveys) will start again. Nothing you have not agreed to will.\n\n"
        f"To lift the restriction, open this link within 7 days and confirm:\n{link}\n\n"
        "If you did not ask for this, ignore this email: the restriction stays in place.\n"
    )
    _send_after_commit(
        to=user.email, subject="Your restriction of processing is about to be lifted", body=body
    )
    return restriction


def restriction_lift_check(*, user: User, token: str) -> ProcessingRestriction:
    """The restriction a lift link names, if the link is valid for this person."""
    try:
        data = signing.loads(token, salt=_LIFT_SALT, max_age=LIFT_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise Gone("This link has expired. Ask again from your privacy center.") from None
    except signing.BadSignature:
        raise NotAllowed("This link is not valid. Use the link in the most recent email.") from None
    if data.get("u") != user.pk:
        raise NotAllowed("This link belongs to another account.")
    restriction = ProcessingRestriction.objects.filter(pk=data.get("r"), user=user).first()
    if restriction is None or restriction.lifted_at is not None:
        raise Gone("This restriction is already lifted.")
    if restriction.lift_requested_at is None:
        raise NotAllowed("This link is not valid. Use the link in the most recent email.")
    return restriction


def restriction_lift_confirm(
    *, user: User, token: str, request: HttpRequest | None = None
) -> ProcessingRestriction:
    with transaction.atomic():
        restriction = restriction_lift_check(user=user, token=token)
        restriction.lifted_at = timezone.now()
        restriction.save(update_fields=["lifted_at"])
        audit_record(
            actor=user, verb="privacy.restriction_lifted", target=restriction, request=request
        )
    return restriction


# ---------------------------------------------------------------- unsubscribe


def unsubscribe_token(*, user: User, purpose: str) -> str:
    return signing.dumps({"u": user.pk, "p": purpose}, salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, user: User, purpose: str) -> str:
    return _absolute(
        reverse("privacy:unsubscribe", args=[unsubscribe_token(user=user, purpose=purpose)])
    )


def unsubscribe_resolve(*, token: str) -> tuple[User, str]:
    """The person and purpose an unsubscribe link names. The links do not expire:
    an old newsletter must still let its reader leave."""
    from pipetower.accounts.models import User

    try:
        data = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise NotAllowed(
            "This unsubscribe link is not valid. Sign in and use your privacy center instead."
        ) from None
    user = User.objects.filter(pk=data.get("u")).first()
    purpose = data.get("p")
    if user is None or purpose not in Purpose.values:
        raise Gone("This subscription no longer exists.")
    return user, purpose


def unsubscribe(*, token: str, request: HttpRequest | None = None) -> tuple[User, str]:
    user, purpose = unsubscribe_resolve(token=token)
    from pipetower.privacy.consent import WORDING_VERSIONS

    consent_set(
        user=user,
        purpose=purpose,
        granted=False,
        channel=Channel.EMAIL_LINK,
        wording_version=WORDING_VERSIONS[purpose],
        request=request,
    )
    return user, purpose


# --------------------------------------------------------------- service notices


class NoticeKind:
    SECURITY = "security"
    POLICY = "policy"
    PRODUCT = "product"
    LABELS = {
        SECURITY: "a security matter",
        POLICY: "a change to our terms or privacy policy",
        PRODUCT: "a product change that affects how you use Pipetower",
    }


def notice_refusal_check(*, kind: str, subject: str, body: str) -> None:
    if kind not in NoticeKind.LABELS:
        raise ServiceError("A service notice is about security, a policy or a product change.")
    if not subject.strip() or not body.strip():
        raise ServiceError("A service notice needs a subject and a text.")


def notice_message(*, kind: str, subject: str, body: str, to: str, **headers: str) -> EmailMessage:
    """One essential service notice, labelled as such in its subject and first lines.

    Service notices are not marketing: they go to everyone, restricted or not,
    newsletter or not, and say so. `notice_send` and the announcement of a
    significant policy version (`privacy.policy`) both build them here."""
    notice_refusal_check(kind=kind, subject=subject, body=body)
    intro = (
        f"This is a service notice about {NoticeKind.LABELS[kind]}. Pipetower sends these to "
        "everyone with an account, because they affect your use of the service; they are not "
        "marketing and you cannot unsubscribe from them.\n\n"
    )
    return EmailMessage(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Service notice: {subject.strip()}",
        body=intro + body.strip() + "\n",
        to=[to],
        headers={"X-Pipetower-Notice": kind, **headers},
    )


def notice_send(*, kind: str, subject: str, body: str) -> int:
    """Send an essential service notice to every active account (`notice_message`).
    Answers how many people it was sent to."""
    from pipetower.accounts.models import User

    notice_refusal_check(kind=kind, subject=subject, body=body)
    count = 0
    for email in User.objects.filter(is_active=True).order_by("pk").values_list("email", flat=True):
        notice_message(kind=kind, subject=subject, body=body, to=email).send()
        count += 1
    return count

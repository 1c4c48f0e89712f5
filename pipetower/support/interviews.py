"""Customer interviews, and the permission to record each one.

Staff invite a person (`interview_invite`, from the back office); the person
gets an email with a link that only works for their account. On that page they
accept or decline the interview and say, for this interview, whether it may be
recorded (`interview_respond`). Staff see the answer in the back office, and
can keep a recording (store where it is, `interview_recording_keep`) only after
a yes: `interview_recording_refusal` is the one check, used by the service and
by the back office to show why not.

The person withdraws the permission later from the invitation page or the
privacy center (`interview_recording_withdraw`); turning off "Recording of
customer interviews" anywhere else (privacy center, API, a staff objection)
withdraws it for every interview (`interview_recordings_withdraw_all`, called
by `privacy.consent.consent_set`). Withdrawing deletes the recording's
reference and is audited; every answer is also a row in the consent history.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.privacy.consent import WORDING_VERSIONS, consent_set, restriction_active
from pipetower.privacy.models import Channel, Purpose
from pipetower.support.models import Interview

if TYPE_CHECKING:
    from pipetower.accounts.models import User

MAX_AHEAD = timedelta(days=365)
TOPIC_MAX = 200
REFERENCE_MAX = 500


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def interview_url(token: str) -> str:
    return settings.BASE_URL + reverse("support:interview", args=[token])


# --- reads --------------------------------------------------------------------


def interview_get_for_token(*, token: str, user: User) -> Interview | None:
    """The invitation a link names, only for the person it was sent to: unknown
    links and other people's links are alike (None)."""
    if not token or len(token) > 100:
        return None
    return Interview.objects.filter(token_hash=_token_hash(token), user=user).first()


def interview_get_for_user(*, user: User, interview_id: Any) -> Interview | None:
    try:
        pk = int(interview_id)
    except (TypeError, ValueError):
        return None
    return Interview.objects.filter(pk=pk, user=user).first()


def interviews_for_user(*, user: User) -> QuerySet[Interview]:
    """The person's interviews, for the privacy center."""
    return Interview.objects.filter(user=user).order_by("-scheduled_for", "-id")


def interview_recording_refusal(*, interview: Interview) -> str | None:
    """Why a recording of this interview may not be kept (None when it may)."""
    if interview.recording_allowed is None:
        return (
            "The person has not answered whether this interview may be recorded. "
            "Do not record it; ask them to answer on their invitation page."
        )
    if not interview.recording_allowed:
        return "The person did not allow this interview to be recorded. Do not keep a recording."
    if interview.status == Interview.Status.DECLINED:
        return "The person declined this interview."
    user = interview.user
    if not user.is_active:
        return "This person's account is closed."
    if restriction_active(user=user):
        return "This person has limited the processing of their data: no recording is kept."
    return None


# --- writes -------------------------------------------------------------------


def _staff_check(staff: Any) -> None:
    if not getattr(staff, "is_authenticated", False) or not staff.is_staff:
        raise NotAllowed("Only Pipetower staff can do this.")


def interview_invite(
    *,
    staff: User,
    user: User,
    topic: str,
    scheduled_for: datetime | None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Interview:
    """Invite `user` to an interview and email them the link to answer."""
    _staff_check(staff)
    now = now or timezone.now()
    if user is None or not user.is_active:
        raise ServiceError("Choose an active account to invite.", field="user")
    topic = (topic or "").strip()
    if not topic:
        raise ServiceError("Say what the interview is about.", field="topic")
    if len(topic) > TOPIC_MAX:
        raise ServiceError(f"Keep the topic under {TOPIC_MAX} characters.", field="topic")
    if scheduled_for is None:
        raise ServiceError("Give the date and time of the interview.", field="scheduled_for")
    if scheduled_for <= now:
        raise ServiceError("The interview must be in the future.", field="scheduled_for")
    if scheduled_for > now + MAX_AHEAD:
        raise ServiceError("Invite at most a year ahead.", field="scheduled_for")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        interview = Interview.objects.create(
            user=user,
            topic=topic,
            scheduled_for=scheduled_for,
            token_hash=_token_hash(token),
            invited_by=staff,
            created_at=now,
        )
        audit_record(
            actor=staff,
            verb="support.interview_invited",
            target=interview,
            request=request,
            data={"interview": interview.pk},
        )
        link = interview_url(token)
        when = scheduled_for.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")
        message = EmailMessage(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}An invitation to talk with us",
            body=(
                f"Hello {user.display_name},\n\n"
                "We would like to talk with you about how you use Pipetower.\n"
                f"Topic: {topic}\nWhen: {when}\n\n"
                "Open this link (signed in to your account) to accept or decline, and to "
                "tell us whether we may record the conversation:\n"
                f"{link}\n\n"
                "We record an interview only if you say yes for it. You can withdraw that "
                "permission at any time, from the same link or from your privacy center, "
                "and we then delete the recording.\n"
            ),
            to=[user.email],
        )
        transaction.on_commit(message.send, robust=True)
    return interview


def _locked(interview: Interview) -> Interview:
    return Interview.objects.select_for_update().select_related("user").get(pk=interview.pk)


def _record_consent(*, user: User, allowed: bool, request: HttpRequest | None) -> None:
    purpose = Purpose.INTERVIEW_RECORDING
    consent_set(
        user=user,
        purpose=purpose,
        granted=allowed,
        channel=Channel.INTERVIEW,
        wording_version=WORDING_VERSIONS[purpose],
        request=request,
    )


def _forget_recording(*, interview: Interview, actor: Any, request: HttpRequest | None) -> None:
    """Within the caller's transaction: the permission is off and the reference gone."""
    had_reference = bool(interview.recording_reference)
    interview.recording_allowed = False
    interview.recording_answered_at = timezone.now()
    interview.recording_reference = ""
    interview.recording_kept_at = None
    interview.save(
        update_fields=[
            "recording_allowed",
            "recording_answered_at",
            "recording_reference",
            "recording_kept_at",
        ]
    )
    audit_record(
        actor=actor,
        verb="support.interview_recording_withdrawn",
        target=interview,
        request=request,
        data={"interview": interview.pk, "recording_deleted": had_reference},
    )


def interview_respond(
    *,
    interview: Interview,
    user: User,
    attend: bool,
    recording: bool,
    request: HttpRequest | None = None,
) -> Interview:
    """The person's answer: take part or not, and may this interview be recorded."""
    with transaction.atomic():
        locked = _locked(interview)
        if locked.user_id != user.pk:
            raise NotAllowed("This invitation is not for your account.")
        if locked.expired:
            raise Gone("This interview has already taken place, so it cannot be answered now.")
        allow = bool(attend and recording)
        was_allowed = locked.recording_allowed is True
        locked.status = Interview.Status.ACCEPTED if attend else Interview.Status.DECLINED
        locked.answered_at = timezone.now()
        if was_allowed and not allow:
            _forget_recording(interview=locked, actor=user, request=request)
        else:
            locked.recording_allowed = allow
            locked.recording_answered_at = locked.answered_at
        locked.save(
            update_fields=["status", "answered_at", "recording_allowed", "recording_answered_at"]
        )
        audit_record(
            actor=user,
            verb="support.interview_answered",
            target=locked,
            request=request,
            data={"interview": locked.pk, "attend": attend, "recording_allowed": allow},
        )
        _record_consent(user=user, allowed=allow, request=request)
    return locked


def interview_recording_withdraw(
    *, interview: Interview, user: User, request: HttpRequest | None = None
) -> Interview:
    """The person takes back the permission to record this interview: the
    recording's reference is deleted, the change audited and added to their
    consent history."""
    with transaction.atomic():
        locked = _locked(interview)
        if locked.user_id != user.pk:
            raise NotAllowed("This invitation is not for your account.")
        if locked.recording_allowed is not True:
            raise Conflict("You have not allowed this interview to be recorded.")
        _forget_recording(interview=locked, actor=user, request=request)
        _record_consent(user=user, allowed=False, request=request)
    return locked


def interview_recordings_withdraw_all(*, user: User, request: HttpRequest | None = None) -> int:
    """Every recording permission of `user` withdrawn (they turned the purpose off
    somewhere else, which is already in the consent history). Answers how many."""
    count = 0
    with transaction.atomic():
        for interview in Interview.objects.select_for_update().filter(
            user=user, recording_allowed=True
        ):
            _forget_recording(interview=interview, actor=user, request=request)
            count += 1
    return count


def interview_recording_keep(
    *,
    staff: User,
    interview: Interview,
    reference: str,
    request: HttpRequest | None = None,
) -> Interview:
    """Staff note where the recording of an interview is kept. Refused unless the
    person said yes for this interview (and has not limited processing since)."""
    _staff_check(staff)
    reference = (reference or "").strip()
    with transaction.atomic():
        locked = _locked(interview)
        refusal = interview_recording_refusal(interview=locked)
        if refusal:
            raise Conflict(refusal, code="recording_not_allowed", field="recording_reference")
        if not reference:
            raise ServiceError(
                "Say where the recording is kept (a link or a file name).",
                field="recording_reference",
            )
        if len(reference) > REFERENCE_MAX:
            raise ServiceError(
                f"Keep the reference under {REFERENCE_MAX} characters.",
                field="recording_reference",
            )
        locked.recording_reference = reference
        locked.recording_kept_at = timezone.now()
        locked.save(update_fields=["recording_reference", "recording_kept_at"])
        audit_record(
            actor=staff,
            verb="support.interview_recording_kept",
            target=locked,
            request=request,
            data={"interview": locked.pk},
        )
    return locked

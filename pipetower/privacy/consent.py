"""The consent and objection ledger, and the one check every optional job calls.

- `consent_set(...)` records a grant or a withdrawal (web, API, email link or
  cookie banner). Rows are only added, never changed: the newest row per
  person and purpose is the current choice, so rapid toggling leaves exactly
  one row per click and the state is the last click.
- `processing_allowed(*, user, purpose)` answers whether an optional job
  (newsletter, surveys, analytics, A/B assignment, marketing use of a name)
  may touch this person: only with their consent and only while they have no
  active restriction of processing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from pipetower.audit.services import audit_record
from pipetower.core.errors import ServiceError
from pipetower.privacy.models import (
    Channel,
    ConsentEvent,
    DataSubjectRequest,
    ProcessingRestriction,
    Purpose,
)

if TYPE_CHECKING:
    from pipetower.accounts.models import User

# The wording a person saw when they chose. Bump a purpose's version when its
# explanation changes; the ledger keeps which version each choice answered.
WORDING_VERSIONS: dict[str, str] = {
    Purpose.NEWSLETTER: "2026-11-1",
    Purpose.PRODUCT_SURVEYS: "2026-11-1",
    Purpose.INTERVIEW_RECORDING: "2026-11-1",
    Purpose.ANALYTICS_COOKIES: "2026-11-1",
    Purpose.AB_TESTING_COOKIES: "2026-11-1",
    Purpose.MARKETING_NAME_USE: "2026-11-1",
}

PURPOSE_EXPLANATIONS: dict[str, str] = {
    Purpose.NEWSLETTER: "Occasional email about new Pipetower features and tips.",
    Purpose.PRODUCT_SURVEYS: "Short optional questionnaires that help us improve Pipetower.",
    Purpose.INTERVIEW_RECORDING: (
        "If you take part in a customer interview, we may record it for our notes. "
        "We never record without this permission."
    ),
    Purpose.ANALYTICS_COOKIES: "Cookies that count visits so we can see which pages help.",
    Purpose.AB_TESTING_COOKIES: "Cookies that show you one of two versions of a page.",
    Purpose.MARKETING_NAME_USE: (
        "Mentioning your name or company as a Pipetower customer, for example on our website."
    ),
}


def _purpose(purpose: str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        raise ServiceError(f"Unknown purpose: {purpose!r}.") from None


def consent_set(
    *,
    user: User | None = None,
    anonymous_id: str | None = None,
    purpose: str,
    granted: bool,
    channel: str,
    wording_version: str,
    request: HttpRequest | None = None,
) -> ConsentEvent:
    """Record that a person (signed in, or known only by a cookie id) granted or
    withdrew consent for one purpose. Always adds a row, even when the choice is
    the same as before: the ledger is the history of what the person said."""
    purpose_enum = _purpose(purpose)
    try:
        channel_enum = Channel(channel)
    except ValueError:
        raise ServiceError(f"Unknown consent channel: {channel!r}.") from None
    if user is None and not anonymous_id:
        raise ServiceError("A consent choice needs a person: a user or an anonymous id.")
    if anonymous_id and len(anonymous_id) > 64:
        raise ServiceError("The anonymous id is too long.")
    if not wording_version or len(wording_version) > 32:
        raise ServiceError("A consent choice needs the version of the wording shown.")
    with transaction.atomic():
        event = ConsentEvent.objects.create(
            user=user,
            anonymous_id=anonymous_id or "",
            purpose=purpose_enum,
            granted=granted,
            channel=channel_enum,
            wording_version=wording_version,
        )
        if user is not None:
            audit_record(
                actor=user,
                verb="privacy.consent_granted" if granted else "privacy.consent_withdrawn",
                target=event,
                request=request,
                data={"purpose": purpose_enum.value, "channel": channel_enum.value},
            )
            if (
                purpose_enum == Purpose.INTERVIEW_RECORDING
                and not granted
                and channel_enum != Channel.INTERVIEW  # that one names its own interview
            ):
                # Off means off for every interview: the recordings' references go.
                from pipetower.support.interviews import interview_recordings_withdraw_all

                interview_recordings_withdraw_all(user=user, request=request)
            if channel_enum != Channel.STAFF:  # staff act on a request already recorded
                from pipetower.privacy.rights_requests import (
                    data_subject_request_record_fulfilled,
                )

                data_subject_request_record_fulfilled(
                    user=user,
                    kind=DataSubjectRequest.Kind.CONSENT,
                    details=(
                        f"{'Agreed to' if granted else 'Withdrew agreement to'}: "
                        f"{purpose_enum.label} ({channel_enum.label})."
                    ),
                    request=request,
                )
    return event


def consent_state(
    *, user: User | None = None, anonymous_id: str | None = None, purpose: str
) -> bool:
    """The person's current choice for a purpose: the newest event, off when none."""
    events = ConsentEvent.objects.filter(purpose=_purpose(purpose))
    if user is not None:
        events = events.filter(user=user)
    elif anonymous_id:
        events = events.filter(anonymous_id=anonymous_id, user__isnull=True)
    else:
        return False
    latest = events.order_by("-id").values_list("granted", flat=True).first()
    return bool(latest)


def consent_states(*, user: User) -> dict[str, bool]:
    """Every purpose with the person's current choice."""
    states = {p.value: False for p in Purpose}
    for event in ConsentEvent.objects.filter(user=user).order_by("id"):
        states[event.purpose] = event.granted
    return states


def restriction_active(*, user: User) -> bool:
    return ProcessingRestriction.objects.filter(user=user, lifted_at__isnull=True).exists()


def processing_allowed(*, user: User | None, purpose: str, anonymous_id: str | None = None) -> bool:
    """May an optional job process this person's data for this purpose?

    True only when the person granted consent for the purpose (newest choice)
    and, for an account, no restriction of processing is active. Every
    optional job calls this before it touches a person's data.
    """
    _purpose(purpose)
    if user is not None and getattr(user, "is_authenticated", False):
        if not user.is_active or restriction_active(user=user):
            return False
        return consent_state(user=user, purpose=purpose)
    if anonymous_id:
        return consent_state(anonymous_id=anonymous_id, purpose=purpose)
    return False


def consenting_candidates(*, purpose: str) -> QuerySet[Any]:
    """Accounts whose newest choice for the purpose is a grant: the people an
    optional job may consider. Each job still asks `processing_allowed` per
    person, which also honours restrictions."""
    from pipetower.accounts.models import User

    latest = (
        ConsentEvent.objects.filter(user=OuterRef("pk"), purpose=_purpose(purpose))
        .order_by("-id")
        .values("granted")[:1]
    )
    return (
        User.objects.filter(is_active=True)
        .annotate(latest_choice=Subquery(latest))
        .filter(latest_choice=True)
        .order_by("pk")
    )

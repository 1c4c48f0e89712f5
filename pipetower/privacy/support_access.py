"""Support access: Pipetower staff see a team's content only with its permission.

A team owner or admin grants support access (`support_grant_create`): read
only, or "fix automation" (also change actions and start, cancel or re-run
runs), for at most 7 days, with a reason or ticket reference. They can revoke
it at any time (`support_grant_revoke`). While a grant is active, staff use the
team's normal pages with a banner that says so; `staff_membership` is the one
check, called by `teams.permissions.team_view` for a staff member who is not in
the team, and by the actions services for a change. Without an active grant
staff get 404 (never had one) or 403 (it was revoked or expired), exactly like
anyone who is not a member. The API never honours a grant.

Every staff request under a grant is written down (`StaffAccess`, plus an
activity-log row the team sees), listed on the team's support access page, and
summarised by email to the team's owners once the grant ends
(`support_grant_summary_send`: at revocation, or by the scheduler after expiry).

Writes follow `pipetower/teams/services.py`: lock, re-read, refusal check,
write, audit, in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.privacy.models import SUPPORT_GRANT_MAX_DAYS, StaffAccess, SupportGrant
from pipetower.teams.models import Membership, Role, Team

if TYPE_CHECKING:
    from pipetower.accounts.models import User

logger = logging.getLogger(__name__)

MAX_DURATION = timedelta(days=SUPPORT_GRANT_MAX_DAYS)
REASON_MIN = 3
REASON_MAX = 300
# A page re-opened (or polled, as live output is) within this long by the same
# staff member under the same grant is one entry in the log, not one per poll.
VIEW_DEDUP = timedelta(minutes=5)
# URL namespaces whose pages change automation: what a "fix" grant may change.
AUTOMATION_NAMESPACES = frozenset({"actions", "runs"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --- reads ---------------------------------------------------------------------


def support_grant_active(*, team: Team, now: datetime | None = None) -> SupportGrant | None:
    """The team's active grant that reaches furthest (a fix grant before a read grant)."""
    now = now or timezone.now()
    grants = list(
        SupportGrant.objects.filter(team=team, revoked_at__isnull=True, expires_at__gt=now)
    )
    if not grants:
        return None
    return max(grants, key=lambda g: (g.scope == SupportGrant.Scope.FIX, g.expires_at))


def support_grants_for_team(*, team: Team) -> QuerySet[SupportGrant]:
    return SupportGrant.objects.filter(team=team).select_related("granted_by", "revoked_by")


def staff_accesses_for_team(*, team: Team) -> QuerySet[StaffAccess]:
    return StaffAccess.objects.filter(team=team).select_related("grant")


def support_grant_get(*, team: Team, grant_id: int) -> SupportGrant:
    try:
        return SupportGrant.objects.get(team=team, pk=grant_id)
    except (SupportGrant.DoesNotExist, ValueError):
        raise Http404("No such support access.") from None


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


# --- the one check -------------------------------------------------------------


class StaffRefused(NotAllowed):
    """Staff may not do this in the team now; the message says why (403)."""

    code = "support_access_refused"


def _refuse_without_grant(*, team: Team, user: Any) -> None:
    """No active grant: 403 when the team had given staff access before (so the
    staff member learns it ended), otherwise 404 as for anyone outside the team."""
    last = SupportGrant.objects.filter(team=team).order_by("-created_at", "-id").first()
    if last is None:
        raise Http404("No such team.")
    if last.revoked_at is not None:
        raise StaffRefused(
            f"{team.name} revoked Pipetower's support access on "
            f"{timezone.localtime(last.revoked_at):%d %B %Y at %H:%M}."
        )
    raise StaffRefused(
        f"Pipetower's support access to {team.name} expired on "
        f"{timezone.localtime(last.expires_at):%d %B %Y at %H:%M}."
    )


def support_change_refusal(*, grant: SupportGrant, namespace: str) -> NotAllowed | None:
    """Why staff may not change something on a page of `namespace` under `grant`."""
    if grant.scope != SupportGrant.Scope.FIX:
        return NotAllowed(
            "This team gave Pipetower read-only support access: staff can look, not change."
        )
    if namespace not in AUTOMATION_NAMESPACES:
        return NotAllowed(
            "Support access lets staff fix automation (actions and runs) only; "
            "the team's members, servers and settings stay with the team."
        )
    return None


def staff_membership(*, request: HttpRequest, team_slug: str) -> Membership:
    """For a staff member who is not in the team: a stand-in membership when the
    team has granted support access that covers this request, after logging it.

    Raises Http404 (no such team, or never granted) or StaffRefused (grant
    ended, read-only grant and a change, or a change outside automation).
    """
    user = request.user
    if not is_staff(user):
        raise Http404("No such team.")
    team = Team.objects.filter(slug=team_slug).first()
    if team is None:
        raise Http404("No such team.")
    grant = support_grant_active(team=team)
    if grant is None:
        _refuse_without_grant(team=team, user=user)
        raise Http404("No such team.")  # pragma: no cover - the line above always raises
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match is not None else ""
    changing = (request.method or "GET") not in SAFE_METHODS
    if changing and (refusal := support_change_refusal(grant=grant, namespace=namespace)):
        raise StaffRefused(refusal.message)
    staff_access_record(grant=grant, staff=user, request=request, changing=changing)
    # Read: what a viewer sees. Fix: an admin's reach, but only on automation pages
    # (the check above) and in the actions services (`support_role`).
    role = Role.VIEWER
    if grant.scope == SupportGrant.Scope.FIX and namespace in AUTOMATION_NAMESPACES:
        role = Role.ADMIN
    request.support_grant = grant  # type: ignore[attr-defined]
    return Membership(team=team, user=cast("User", user), role=role)


def support_role(*, team: Team, user: Any) -> Role | None:
    """The role a staff member has in a service call under the team's grant:
    admin under a fix grant (the actions services allow automation changes),
    viewer under a read grant, None without one."""
    if not is_staff(user):
        return None
    grant = support_grant_active(team=team)
    if grant is None:
        return None
    return Role.ADMIN if grant.scope == SupportGrant.Scope.FIX else Role.VIEWER


# --- the log ---------------------------------------------------------------------


def staff_access_record(
    *, grant: SupportGrant, staff: Any, request: HttpRequest, changing: bool
) -> StaffAccess | None:
    """Write down one staff request under `grant`, for the team to see.

    A page viewed again within VIEW_DEDUP is not written twice (live output
    polls); every change is written."""
    path = request.path[:500]
    kind = StaffAccess.Kind.CHANGE if changing else StaffAccess.Kind.VIEW
    now = timezone.now()
    if (
        not changing
        and StaffAccess.objects.filter(
            grant=grant,
            staff=staff,
            kind=kind,
            path=path,
            created_at__gt=now - VIEW_DEDUP,
        ).exists()
    ):
        return None
    match = getattr(request, "resolver_match", None)
    page = (match.view_name if match is not None else "")[:100]
    with transaction.atomic():
        access = StaffAccess.objects.create(
            grant=grant,
            team_id=grant.team_id,
            staff=staff,
            staff_label=staff.email[:254],
            kind=kind,
            method=(request.method or "GET")[:8],
            path=path,
            page=page,
            created_at=now,
        )
        audit_record(
            actor=staff,
            team=grant.team,
            verb="support.staff_changed" if changing else "support.staff_viewed",
            target=grant,
            request=request,
            data={"path": path, "method": access.method, "grant": grant.pk},
        )
    return access


# --- writes ----------------------------------------------------------------------


def _lock_team(team: Team) -> None:
    list(Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True))


def _grant_refusal(membership: Membership | None, doing: str) -> NotAllowed | None:
    if membership is None:
        return NotAllowed("You are not a member of this team.")
    if not membership.role_enum.at_least(Role.ADMIN):
        return NotAllowed(
            f"Only team owners and admins can {doing} Pipetower's support access. "
            f"Your role is {membership.role_enum.label}."
        )
    return None


def support_grant_refusal(membership: Membership | None) -> NotAllowed | None:
    """Why this member may not grant or revoke support access (pages ask it too)."""
    return _grant_refusal(membership, "grant or revoke")


def _real_membership(team: Team, user: Any) -> Membership | None:
    """The actor's own membership: a staff member's stand-in never counts here."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(team=team, user=user).first()


def _clean_scope(scope: str) -> SupportGrant.Scope:
    try:
        return SupportGrant.Scope(scope)
    except ValueError:
        raise ServiceError(
            "Choose what staff may do: read only, or read and fix automation.", field="scope"
        ) from None


def _clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN:
        raise ServiceError(
            "Say why staff need access: a reason or a support ticket reference.", field="reason"
        )
    if len(reason) > REASON_MAX:
        raise ServiceError(
            f"Keep the reason under {REASON_MAX} characters; a ticket reference is enough.",
            field="reason",
        )
    return reason


def _clean_duration(duration: timedelta) -> timedelta:
    if duration <= timedelta(0):
        raise ServiceError("Choose how long staff may have access.", field="duration")
    if duration > MAX_DURATION:
        raise ServiceError(
            f"Support access lasts at most {SUPPORT_GRANT_MAX_DAYS} days. "
            "Grant it again later if staff need longer.",
            field="duration",
        )
    return duration


def support_grant_create(
    *,
    team: Team,
    actor: User,
    scope: str,
    reason: str,
    duration: timedelta,
    request: HttpRequest | None = None,
) -> SupportGrant:
    """Let Pipetower staff into the team for `duration` (at most 7 days)."""
    scope_enum = _clean_scope(scope)
    reason = _clean_reason(reason)
    duration = _clean_duration(duration)
    with transaction.atomic():
        _lock_team(team)
        if refusal := support_grant_refusal(_real_membership(team, actor)):
            raise refusal
        now = timezone.now()
        grant = SupportGrant.objects.create(
            team=team,
            scope=scope_enum,
            reason=reason,
            granted_by=actor,
            created_at=now,
            expires_at=now + duration,
        )
        audit_record(
            actor=actor,
            team=team,
            verb="support.granted",
            target=grant,
            request=request,
            data={
                "scope": scope_enum.value,
                "reason": reason,
                "expires_at": grant.expires_at.isoformat(),
            },
        )
    return grant


def support_grant_revoke(
    *, grant: SupportGrant, actor: User, request: HttpRequest | None = None
) -> SupportGrant:
    """End support access now; staff get 403 from the next request on, and the
    owners get the summary of what staff did."""
    with transaction.atomic():
        _lock_team(grant.team)
        locked = SupportGrant.objects.select_for_update().select_related("team").get(pk=grant.pk)
        if refusal := support_grant_refusal(_real_membership(locked.team, actor)):
            raise refusal
        if locked.revoked_at is not None:
            raise Conflict("This support access was already revoked.")
        now = timezone.now()
        if locked.expires_at <= now:
            raise Conflict("This support access has already expired; there is nothing to revoke.")
        locked.revoked_at = now
        locked.revoked_by = actor
        locked.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=actor,
            team=locked.team,
            verb="support.revoked",
            target=locked,
            request=request,
            data={"scope": locked.scope},
        )
        _enqueue_summary(locked.pk)
    grant.revoked_at, grant.revoked_by = locked.revoked_at, locked.revoked_by
    return grant


# --- the summary email -------------------------------------------------------------


def _enqueue_summary(grant_id: int) -> None:
    from pipetower.privacy.tasks import support_grant_summary_task

    transaction.on_commit(partial(support_grant_summary_task.delay, grant_id))


@dataclass(frozen=True)
class SummaryLine:
    when: datetime
    who: str
    kind: str
    path: str


def support_grant_summary_send(*, grant_id: int) -> bool:
    """Mail the team's owners what staff did under an ended grant, once.

    Answers False when the grant is still active, gone, or already summarised."""
    with transaction.atomic():
        grant = (
            SupportGrant.objects.select_for_update(of=("self",))
            .select_related("team")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None or grant.summary_sent_at is not None or grant.is_active():
            return False
        owners = list(
            Membership.objects.filter(team=grant.team, role=Role.OWNER)
            .select_related("user")
            .values_list("user__email", flat=True)
        )
        accesses = list(grant.accesses.order_by("created_at", "id"))
        context = {
            "team": grant.team,
            "grant": grant,
            "lines": [
                SummaryLine(a.created_at, a.staff_label, a.get_kind_display(), a.path)
                for a in accesses
            ],
            "views": sum(1 for a in accesses if a.kind == StaffAccess.Kind.VIEW),
            "changes": sum(1 for a in accesses if a.kind == StaffAccess.Kind.CHANGE),
            "link": settings.BASE_URL
            + reverse("support_access:list", kwargs={"team_slug": grant.team.slug}),
        }
        grant.summary_sent_at = timezone.now()
        grant.save(update_fields=["summary_sent_at"])
        if owners:
            message = EmailMessage(
                subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX
                + f"What Pipetower staff did in {grant.team.name}",
                body=render_to_string("privacy/support_access_summary.txt", context),
                to=owners,
            )
            transaction.on_commit(message.send, robust=True)
    return True


def support_grants_summarise(*, now: datetime | None = None) -> int:
    """Run by the scheduler: summarise every grant that ended and was not yet summarised."""
    now = now or timezone.now()
    ended = SupportGrant.objects.filter(summary_sent_at__isnull=True, expires_at__lte=now)
    revoked = SupportGrant.objects.filter(summary_sent_at__isnull=True, revoked_at__isnull=False)
    ids = sorted(
        set(ended.values_list("pk", flat=True)) | set(revoked.values_list("pk", flat=True))
    )
    return sum(1 for pk in ids if support_grant_summary_send(grant_id=pk))

"""Writes for teams, memberships and invitations.

Every function here checks the role rules (`teams.permissions`), makes the
change in one transaction, writes its audit row and raises a
`pipetower.core.errors` exception with a message a person can read. The HTML
views and the REST API both call these; neither repeats the rules.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from anyascii import anyascii
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.text import slugify

from pipetower.accounts.models import User
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.core.outbox import outbox_enqueue
from pipetower.teams import permissions
from pipetower.teams.models import Invitation, Membership, Role, Team
from pipetower.teams.selectors import (
    invitation_find_by_token,
    membership_of,
    team_member_with_email_exists,
    team_owner_count,
    team_pending_invitation_exists,
    token_hash,
)

logger = logging.getLogger(__name__)

# Slugs that would collide with fixed paths under /teams/.
RESERVED_SLUGS = frozenset({"new", "join"})
TEAM_NAME_MAX = 100
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,128}")
# Invitations are deleted this long after they expired (accepted ones included:
# the membership and the audit log keep what matters).
INVITATION_RETENTION = timedelta(days=30)


# --- helpers -----------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("Give the team a name.", field="name")
    if len(name) > TEAM_NAME_MAX:
        raise ServiceError(
            f"A team name can be at most {TEAM_NAME_MAX} characters long.", field="name"
        )
    return name


def _clean_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ServiceError(
            "Choose a role: " + ", ".join(r.label.lower() for r in Role) + ".", field="role"
        ) from None


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError("Enter a valid email address.", field="email") from None
    return email


def _lock_team(team: Team) -> None:
    """Serialise membership changes in one team, so two owners cannot demote each
    other at the same moment and leave it with none. (SQLite already serialises
    writes: its transactions start IMMEDIATE.)"""
    list(Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True))


def _slug_base(name: str) -> str:
    """A readable address from any script: 'Ünïcødé 🚀 团队' → 'unicode-tuandui'.

    Letters are transliterated (anyascii); emoji and other symbols are dropped.
    A name with nothing readable left ('!!!', '🚀') gets 'team-' and a short
    random id, so such teams never queue up behind one another as team-2, team-3.
    """
    letters = "".join(c for c in name if not unicodedata.category(c).startswith("S"))
    base = slugify(anyascii(letters))[:50].strip("-")
    if not base:
        return f"team-{secrets.token_hex(3)}"
    if base in RESERVED_SLUGS:
        base = f"{base}-team"
    return base


def _slug_candidates(name: str) -> list[str]:
    base = _slug_base(name)
    return [base] + [f"{base}-{n}" for n in range(2, 50)]


def _new_token() -> tuple[str, str]:
    """A fresh random token and the hash stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def _actor_membership(team: Team, actor: User) -> Membership | None:
    return membership_of(team=team, user=actor)


def invitation_link(token: str) -> str:
    return settings.BASE_URL + reverse("teams:join", kwargs={"token": token})


# --- teams -------------------------------------------------------------------


def team_create(*, user: User, name: str, request: HttpRequest | None = None) -> Team:
    """Create a team with a unique slug taken from its name; `user` becomes its owner."""
    name = _clean_name(name)
    if not getattr(user, "is_authenticated", False):
        raise NotAllowed("Sign in to create a team.")
    wanted = _slug_candidates(name)
    taken = set(Team.objects.filter(slug__startswith=wanted[0]).values_list("slug", flat=True))
    candidates = [slug for slug in wanted if slug not in taken]
    candidates.append(f"{wanted[0]}-{secrets.token_hex(3)}")
    with transaction.atomic():
        team = None
        for slug in candidates:
            try:
                with transaction.atomic():
                    team = Team.objects.create(name=name, slug=slug, created_by=user)
                break
            except IntegrityError:  # taken since we looked: try the next one
                continue
        if team is None:  # pragma: no cover - 50 collisions in a row
            raise Conflict("Could not find a free address for this team. Try another name.")
        Membership.objects.create(team=team, user=user, role=Role.OWNER)
        audit_record(actor=user, team=team, verb="team.created", target=team, request=request)
    return team


def team_update(*, team: Team, actor: User, name: str, request: HttpRequest | None = None) -> Team:
    """Rename the team (admin and owner). The slug, and so every link, stays the same."""
    name = _clean_name(name)
    membership = _actor_membership(team, actor)
    if membership is None:
        raise NotAllowed("You are not a member of this team.")
    if not membership.role_enum.at_least(Role.ADMIN):
        raise NotAllowed("Only team owners and admins can change the team's settings.")
    if name == team.name:
        return team
    with transaction.atomic():
        old = team.name
        team.name = name
        team.save(update_fields=["name"])
        audit_record(
            actor=actor,
            team=team,
            verb="team.renamed",
            target=team,
            request=request,
            data={"from": old, "to": name},
        )
    return team


def team_require_2fa_set(
    *, team: Team, actor: User, required: bool, request: HttpRequest | None = None
) -> Team:
    """Turn the team's two-factor requirement on or off (owners only).

    Turning it on needs two-factor authentication on the owner's own account,
    so nobody locks themselves out of their team by accident.
    """
    from pipetower.accounts.mfa import has_two_factor

    membership = _actor_membership(team, actor)
    if membership is None:
        raise NotAllowed("You are not a member of this team.")
    if membership.role != Role.OWNER:
        raise NotAllowed(
            "Only team owners can change the two-factor requirement.", field="require_2fa"
        )
    if required == team.require_2fa:
        return team
    if required and not has_two_factor(actor):
        raise ServiceError(
            "Set up two-factor authentication for your own account first: "
            "then you can require it of everyone in the team.",
            code="two_factor_required",
            field="require_2fa",
        )
    with transaction.atomic():
        team.require_2fa = required
        team.save(update_fields=["require_2fa"])
        audit_record(
            actor=actor,
            team=team,
            verb="team.2fa_required" if required else "team.2fa_optional",
            target=team,
            request=request,
        )
    return team


def team_retention_set(
    *,
    team: Team,
    actor: User,
    run_retention_days: int,
    output_limit_mb: int,
    request: HttpRequest | None = None,
) -> Team:
    """Set how long the team keeps finished runs and how much output per server
    (owners and admins). Shorter periods take effect at the next hourly purge."""
    from pipetower.teams import retention

    low, high = retention.RUN_RETENTION_MIN_DAYS, retention.RUN_RETENTION_MAX_DAYS
    if not isinstance(run_retention_days, int) or not low <= run_retention_days <= high:
        raise ServiceError(
            f"Keep runs for {low} to {high} days.", code="out_of_range", field="run_retention_days"
        )
    low, high = retention.OUTPUT_LIMIT_MIN_MB, retention.OUTPUT_LIMIT_MAX_MB
    if not isinstance(output_limit_mb, int) or not low <= output_limit_mb <= high:
        raise ServiceError(
            f"Keep {low} to {high} MB of output per server.",
            code="out_of_range",
            field="output_limit_mb",
        )
    with transaction.atomic():
        locked = _locked_team(team)
        if refusal := permissions.team_settings_refusal(_actor_membership(locked, actor)):
            raise refusal
        before = {
            "run_retention_days": locked.run_retention_days,
            "output_limit_mb": retention.team_output_limit_mb(locked),
        }
        after = {"run_retention_days": run_retention_days, "output_limit_mb": output_limit_mb}
        if before == after:
            return team
        locked.run_retention_days = run_retention_days
        if output_limit_mb != before["output_limit_mb"]:
            locked.output_limit_bytes = output_limit_mb * retention.MB
        locked.save(update_fields=["run_retention_days", "output_limit_bytes"])
        audit_record(
            actor=actor,
            team=locked,
            verb="team.retention_changed",
            target=locked,
            request=request,
            data={"from": before, "to": after},
        )
    team.run_retention_days = locked.run_retention_days
    team.output_limit_bytes = locked.output_limit_bytes
    return team


# --- invitations -------------------------------------------------------------


def invitation_subject(invitation: Invitation) -> str:
    """How the outbox names an invitation's email (see core.outbox.outbox_waiting)."""
    return f"teams.invitation:{invitation.pk}"


def _enqueue_invitation_email(invitation: Invitation, token: str) -> None:
    """Send the invitation email after the transaction commits, through the worker.

    Decision: the task receives the invitation id and the raw token. The token
    is never stored (only its SHA-256 is); it exists in the broker message until
    a worker takes it, which is acceptable because the broker is internal to the
    deployment (Redis on a private network, or the embedded transport's queue
    folder inside the data directory, deleted once processed). Passing the token
    rather than a ready link lets the worker check that it is still the
    invitation's current token, so a send queued before a resend or a revoke
    does not mail a dead link. `argsrepr` keeps it out of Celery's logs and
    monitoring events.
    """
    from pipetower.teams.tasks import invitation_send_task

    invitation_id = invitation.pk
    # Through the outbox (pipetower/core/outbox.py): queued once committed, even
    # if the broker is down now; the token is stored encrypted until then.
    outbox_enqueue(
        invitation_send_task,
        invitation_id,
        secret_args=[token],
        data_key=invitation.team.encryption_key(),
        subject=invitation_subject(invitation),
        argsrepr=f"({invitation_id}, '<token>')",
    )


def invitation_create(
    *,
    team: Team,
    actor: User,
    email: str,
    role: Role | str,
    request: HttpRequest | None = None,
) -> Invitation:
    """Invite `email` to `team` as `role` and email them a single-use link."""
    email = _clean_email(email)
    role = _clean_role(role)
    with transaction.atomic():
        _lock_team(team)
        if refusal := permissions.grant_refusal(_actor_membership(team, actor), role):
            raise refusal
        if team_member_with_email_exists(team=team, email=email):
            raise Conflict(f"{email} is already a member of this team.", field="email")
        if team_pending_invitation_exists(team=team, email=email):
            raise Conflict(
                f"{email} already has a pending invitation. Resend it from the list instead.",
                field="email",
            )
        token, hashed = _new_token()
        now = timezone.now()
        invitation = Invitation.objects.create(
            team=team,
            email=email,
            role=role,
            token_hash=hashed,
            invited_by=actor,
            sent_at=now,
            expires_at=now + settings.INVITATION_TTL,
        )
        audit_record(
            actor=actor,
            team=team,
            verb="invitation.created",
            target=invitation,
            request=request,
            data={"email": email, "role": role.value},
        )
        _enqueue_invitation_email(invitation, token)
    return invitation


def _refuse_unless_open(invitation: Invitation, doing: str) -> None:
    if invitation.accepted_at is not None:
        raise Conflict(
            f"This invitation was already accepted, so it cannot be {doing}. "
            "Manage the member in the member list instead."
        )
    if invitation.revoked_at is not None:
        if doing == "revoked":
            raise Conflict("This invitation was already revoked.")
        raise Conflict(f"This invitation was revoked, so it cannot be {doing}. Send a new one.")


def _locked_invitation(invitation: Invitation) -> Invitation:
    locked = (
        # Lock only the invitation row: PostgreSQL cannot lock the nullable side
        # of the outer join that the optional inviter needs.
        Invitation.objects.select_for_update(of=("self",))
        .select_related("team", "invited_by")
        .get(pk=invitation.pk)
    )
    return locked


def _sync(target: Invitation, source: Invitation) -> Invitation:
    """Copy the saved state onto the caller's object, so it sees the change too."""
    for field in ("token_hash", "sent_at", "expires_at", "revoked_at", "accepted_at"):
        setattr(target, field, getattr(source, field))
    target.accepted_by_id = source.accepted_by_id
    return target


def invitation_resend(
    *, invitation: Invitation, actor: User, request: HttpRequest | None = None
) -> Invitation:
    """Mail a new link with a new expiry; the old link stops working."""
    with transaction.atomic():
        _lock_team(invitation.team)
        locked = _locked_invitation(invitation)
        team = locked.team
        if refusal := permissions.grant_refusal(_actor_membership(team, actor), Role(locked.role)):
            raise refusal
        _refuse_unless_open(locked, "resent")
        if team_member_with_email_exists(team=team, email=locked.email):
            raise Conflict(f"{locked.email} is already a member of this team.")
        if team_pending_invitation_exists(team=team, email=locked.email, exclude_pk=locked.pk):
            raise Conflict(f"{locked.email} already has another pending invitation.")
        token, hashed = _new_token()
        now = timezone.now()
        locked.token_hash = hashed
        locked.sent_at = now
        locked.expires_at = now + settings.INVITATION_TTL
        locked.save(update_fields=["token_hash", "sent_at", "expires_at"])
        audit_record(
            actor=actor,
            team=team,
            verb="invitation.resent",
            target=locked,
            request=request,
            data={"email": locked.email, "role": locked.role},
        )
        _enqueue_invitation_email(locked, token)
    return _sync(invitation, locked)


def invitation_revoke(
    *, invitation: Invitation, actor: User, request: HttpRequest | None = None
) -> Invitation:
    """Withdraw an invitation; its link then says it was revoked."""
    with transaction.atomic():
        locked = _locked_invitation(invitation)
        team = locked.team
        if refusal := permissions.grant_refusal(_actor_membership(team, actor), Role(locked.role)):
            raise refusal
        _refuse_unless_open(locked, "revoked")
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            team=team,
            verb="invitation.revoked",
            target=locked,
            request=request,
            data={"email": locked.email, "role": locked.role},
        )
    return _sync(invitation, locked)


def _refuse_unless_usable(invitation: Invitation) -> None:
    if invitation.accepted_at is not None:
        raise Gone(
            "This invitation has already been used. If it was you, sign in and find the "
            "team in your list; otherwise ask the team for a new invitation.",
            code="invitation_used",
        )
    if invitation.revoked_at is not None:
        raise Gone(
            "This invitation was withdrawn by the team. "
            "Ask the team's owners or admins for a new one.",
            code="invitation_revoked",
        )
    if invitation.expires_at <= timezone.now():
        expired = date_format(timezone.localtime(invitation.expires_at), "j F Y")
        raise Gone(
            f"This invitation expired on {expired}. "
            "Ask the team's owners or admins to send you a new one.",
            code="invitation_expired",
        )


def invitation_get_by_token(*, token: str) -> Invitation:
    """The pending invitation behind a link.

    Raises ServiceError for a malformed or unknown token and Gone, with its own
    message, for one that expired, was used or was revoked.
    """
    invitation = (
        invitation_find_by_token(token=token) if TOKEN_PATTERN.fullmatch(token or "") else None
    )
    if invitation is None:
        raise ServiceError(
            "This invitation link is not valid. Check that you copied the whole link, "
            "or ask the team for a new invitation.",
            code="invitation_invalid",
        )
    _refuse_unless_usable(invitation)
    return invitation


def invitation_accept(*, token: str, user: User, request: HttpRequest | None = None) -> Membership:
    """Join the team with the invitation's role. The token works once."""
    if not getattr(user, "is_authenticated", False):
        raise NotAllowed("Sign in or create an account to accept this invitation.")
    with transaction.atomic():
        found = invitation_get_by_token(token=token)
        invitation = _locked_invitation(found)
        _refuse_unless_usable(invitation)  # again, now that the row is locked
        team = invitation.team
        if Membership.objects.filter(team=team, user=user).exists():
            raise Conflict(f"You are already a member of {team.name}.", code="already_member")
        try:
            with transaction.atomic():
                membership = Membership.objects.create(team=team, user=user, role=invitation.role)
        except IntegrityError:
            raise Conflict(
                f"You are already a member of {team.name}.", code="already_member"
            ) from None
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            actor=user,
            team=team,
            verb="invitation.accepted",
            target=invitation,
            request=request,
            data={"email": invitation.email, "role": invitation.role, "member": user.email},
        )
    return membership


def invitation_email_send(*, invitation_id: int, token: str) -> bool:
    """Mail the invitation link. Called by `invitation_send_task` in the worker.

    Sends nothing (and answers False) when the invitation is gone, no longer
    pending, or `token` is not its current token, as after a resend.
    """
    invitation = (
        Invitation.objects.select_related("team", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or not invitation.is_pending:
        return False
    if not secrets.compare_digest(invitation.token_hash, token_hash(token)):
        return False
    inviter = invitation.invited_by
    context = {
        "team": invitation.team,
        "role": Role(invitation.role),
        "inviter": inviter.display_name if inviter else "Someone",
        "link": invitation_link(token),
        "expires_at": invitation.expires_at,
    }
    subject = " ".join(render_to_string("teams/email/invitation_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject,
        body=render_to_string("teams/email/invitation_message.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(
        render_to_string("teams/email/invitation_message.html", context), "text/html"
    )
    message.send()
    return True


def invitations_purge(*, older_than: timedelta = INVITATION_RETENTION) -> int:
    """Delete invitations that expired more than `older_than` ago; answer how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = Invitation.objects.filter(expires_at__lt=cutoff).delete()
    if deleted:
        logger.info("Purged %d invitations that expired before %s.", deleted, cutoff.isoformat())
    return deleted


# --- memberships -------------------------------------------------------------


def _fresh_membership(membership: Membership) -> Membership:
    fresh = Membership.objects.select_related("user", "team").filter(pk=membership.pk).first()
    if fresh is None:
        raise Conflict(f"{membership.user} is no longer a member of this team.")
    return fresh


def membership_change_role(
    *,
    membership: Membership,
    actor: User,
    role: Role | str,
    request: HttpRequest | None = None,
) -> Membership:
    """Give a member another role, within what the actor may grant."""
    role = _clean_role(role)
    with transaction.atomic():
        _lock_team(membership.team)
        target = _fresh_membership(membership)
        team = target.team
        if refusal := permissions.role_change_refusal(
            _actor_membership(team, actor), target, role, team_owner_count(team=team)
        ):
            raise refusal
        if target.role != role:
            old = target.role
            target.role = role
            target.save(update_fields=["role"])
            audit_record(
                actor=actor,
                team=team,
                verb="member.role_changed",
                target=target.user,
                request=request,
                data={"from": old, "to": role.value},
            )
    membership.role = target.role
    return membership


def membership_remove(
    *, membership: Membership, actor: User, request: HttpRequest | None = None
) -> None:
    """Take someone out of the team."""
    with transaction.atomic():
        _lock_team(membership.team)
        target = _fresh_membership(membership)
        team = target.team
        if refusal := permissions.removal_refusal(
            _actor_membership(team, actor), target, team_owner_count(team=team)
        ):
            raise refusal
        target.delete()
        audit_record(
            actor=actor,
            team=team,
            verb="member.removed",
            target=target.user,
            request=request,
            data={"role": target.role},
        )


def team_leave(*, team: Team, user: User, request: HttpRequest | None = None) -> None:
    """Leave a team. The last owner has to hand ownership on first."""
    with transaction.atomic():
        _lock_team(team)
        membership = _actor_membership(team, user)
        if membership is None:
            raise ServiceError("You are not a member of this team.")
        if refusal := permissions.leave_refusal(membership, team_owner_count(team=team)):
            raise refusal
        membership.delete()
        audit_record(
            actor=user,
            team=team,
            verb="member.left",
            target=user,
            request=request,
            data={"role": membership.role},
        )


# --- deleting a team ---------------------------------------------------------


def team_confirmation_refusal(*, team: Team, typed: str) -> ServiceError | None:
    """Why `typed` does not confirm deleting `team`: it must be the name, exactly."""
    if not (typed or "").strip():
        return ServiceError("Type the team's name to confirm.", field="confirm_name")
    if typed.strip() != team.name:
        return ServiceError(
            "That is not the team's name. Type it exactly as shown, with the same capitals.",
            field="confirm_name",
        )
    return None


def team_member_addresses(*, team: Team) -> list[str]:
    return sorted(set(Membership.objects.filter(team=team).values_list("user__email", flat=True)))


def team_members_mail(*, addresses: list[str], subject: str, body: str) -> None:
    """Mail each member on their own (nobody sees the others' addresses) once committed."""
    from django.core.mail import send_mail

    def send() -> None:
        for address in addresses:
            send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, [address])

    transaction.on_commit(send)


def _locked_team(team: Team) -> Team:
    locked = Team.objects.select_for_update().filter(pk=team.pk).first()
    if locked is None:
        raise Conflict("This team no longer exists.")
    return locked


def _sync_deletion(target: Team, source: Team) -> Team:
    for field in ("deletion_scheduled_for", "deletion_requested_at", "deletion_requested_by_id"):
        setattr(target, field, getattr(source, field))
    return target


def team_deletion_schedule(
    *,
    team: Team,
    actor: User,
    confirm_name: str,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Team:
    """Schedule `team`'s deletion after the grace period (owners only, the name typed).

    The same grace period as an account's (PIPETOWER_DELETION_GRACE_DAYS). Until
    then the team is frozen (`permissions.team_frozen_refusal`: no runs start)
    and an owner can cancel; then `privacy.deletion.team_deletions_purge` erases
    it. Every member is mailed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked_team(team)
        if refusal := permissions.team_deletion_refusal(_actor_membership(locked, actor), locked):
            raise refusal
        if refusal := team_confirmation_refusal(team=locked, typed=confirm_name):
            raise refusal
        locked.deletion_requested_at = now
        locked.deletion_scheduled_for = now + timedelta(days=settings.DELETION_GRACE_DAYS)
        locked.deletion_requested_by = actor
        locked.save(
            update_fields=[
                "deletion_requested_at",
                "deletion_scheduled_for",
                "deletion_requested_by",
            ]
        )
        audit_record(
            actor=actor,
            team=locked,
            verb="team.deletion_scheduled",
            target=locked,
            request=request,
            data={"scheduled_for": locked.deletion_scheduled_for.isoformat()},
        )
        when = date_format(timezone.localtime(locked.deletion_scheduled_for), "j F Y")
        link = settings.BASE_URL + reverse("teams:delete", kwargs={"team_slug": locked.slug})
        team_members_mail(
            addresses=team_member_addresses(team=locked),
            subject=f"The team {locked.name} will be deleted on {when}",
            body=(
                f"{actor.display_name} asked to delete the team {locked.name} on Pipetower.\n\n"
                f"On {when} the team is deleted with everything it holds: its servers, SSH "
                "keys, actions, runs and their output, invitations, memberships and activity "
                "log. Until then no runs start in the team.\n\n"
                f"An owner can cancel the deletion before then: {link}\n"
            ),
        )
    return _sync_deletion(team, locked)


def team_deletion_cancel(*, team: Team, actor: User, request: HttpRequest | None = None) -> Team:
    """Cancel `team`'s scheduled deletion (owners only); runs can start again."""
    with transaction.atomic():
        locked = _locked_team(team)
        if refusal := permissions.team_deletion_cancel_refusal(
            _actor_membership(locked, actor), locked
        ):
            raise refusal
        locked.deletion_scheduled_for = None
        locked.deletion_requested_at = None
        locked.deletion_requested_by = None
        locked.save(
            update_fields=[
                "deletion_requested_at",
                "deletion_scheduled_for",
                "deletion_requested_by",
            ]
        )
        audit_record(
            actor=actor, team=locked, verb="team.deletion_cancelled", target=locked, request=request
        )
        team_members_mail(
            addresses=team_member_addresses(team=locked),
            subject=f"The team {locked.name} will not be deleted",
            body=(
                f"{actor.display_name} cancelled the deletion of the team {locked.name} on "
                "Pipetower. The team stays as it was, and runs can start again.\n"
            ),
        )
    return _sync_deletion(team, locked)

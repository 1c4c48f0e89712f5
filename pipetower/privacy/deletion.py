"""Account deletion: a request, a grace period, then an erasure driven by the data map.

`account_deletion_request` checks what would stop the deletion (teams owned
with other members, runs still in progress), schedules it after
PIPETOWER_DELETION_GRACE_DAYS and mails the person; signing in cancels it
(`account_deletion_cancel`, from the `user_logged_in` receiver).
`account_deletions_purge` (the scheduler's job) erases due accounts with
`account_erase`: teams owned alone go with their servers, actions and runs;
the data map's declarations say what else is deleted or anonymised; the
account's data key is destroyed, files deleted, sessions ended; only what a
legal hold covers is kept. A `DeletionReport` records counts, never names.

Erasure covers every identifier the person ever had: the addresses and
names held in history (activity-log labels, invitations they accepted, the
staff change log, other addresses on the account) are gathered first by
`former_identifiers` and scrubbed everywhere they were written. Content in
teams the person did not own stays with the team, attributed to
`FORMER_MEMBER`. While the deletion is scheduled, every session and API
token of the person is ended (`account_deletion_request`). After a purge
the embedded SQLite database's write-ahead log is checkpointed and
truncated, so erased rows do not linger in it (`sqlite_wal_truncate`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.actions.models import Run, RunStatus
from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from pipetower.core import crypto
from pipetower.core.errors import Conflict
from pipetower.privacy.datamap import DATA_MAP
from pipetower.privacy.export import export_files_delete
from pipetower.privacy.holds import held_models
from pipetower.privacy.models import AccountDeletion, DataSubjectRequest, DeletionReport
from pipetower.privacy.retention import mail_purge_for
from pipetower.privacy.rights_requests import data_subject_request_record_fulfilled
from pipetower.teams.models import Invitation, Membership, Role, Team

ERASED = "deleted account"
FORMER_MEMBER = "a former member"
ACTIVE_RUN = (RunStatus.PENDING_APPROVAL, RunStatus.QUEUED, RunStatus.RUNNING)


def _teams_owned(user: User) -> list[Team]:
    return list(
        Team.objects.filter(memberships__user=user, memberships__role=Role.OWNER).order_by("name")
    )


def _shared_owned(user: User) -> list[Team]:
    return [t for t in _teams_owned(user) if t.memberships.exclude(user=user).exists()]


def _only_owned(user: User) -> list[Team]:
    return [t for t in _teams_owned(user) if not t.memberships.exclude(user=user).exists()]


def deletion_blockers(*, user: User) -> list[str]:
    """Why the account cannot be deleted now, in plain words (empty when it can)."""
    problems = []
    shared = _shared_owned(user)
    if shared:
        names = ", ".join(t.name for t in shared)
        problems.append(
            f"You own teams that have other members: {names}. Make another member an "
            "owner of each (or remove the other members) before deleting your account."
        )
    runs = Run.objects.filter(status__in=ACTIVE_RUN).filter(
        Q(started_by=user) | Q(team__in=_only_owned(user))
    )
    if runs.exists():
        names = ", ".join(sorted({r.action_name for r in runs}))
        problems.append(
            f"Runs are still in progress ({names}). Wait until they finish, or cancel "
            "them, then delete your account."
        )
    return problems


def account_deletion_pending(*, user: User) -> AccountDeletion | None:
    return AccountDeletion.objects.filter(
        user=user, status=AccountDeletion.Status.SCHEDULED
    ).first()


def account_deletion_request(
    *, user: User, request: HttpRequest | None = None, now: datetime | None = None
) -> AccountDeletion:
    """Schedule the deletion of `user`'s account after the grace period."""
    now = now or timezone.now()
    problems = deletion_blockers(user=user)
    if problems:
        raise Conflict(" ".join(problems))
    if account_deletion_pending(user=user):
        raise Conflict("Your account is already scheduled for deletion.")
    with transaction.atomic():
        deletion = AccountDeletion.objects.create(
            user=user,
            requested_at=now,
            scheduled_for=now + timedelta(days=settings.DELETION_GRACE_DAYS),
        )
        audit_record(actor=user, verb="privacy.deletion_requested", target=user, request=request)
        data_subject_request_record_fulfilled(
            user=user,
            kind=DataSubjectRequest.Kind.DELETION,
            details="Deletion of my account, scheduled from the privacy center.",
            request=request,
        )
        signed_out = user_signed_out_everywhere(user=user)
        if any(signed_out.values()):
            audit_record(
                actor=user,
                verb="privacy.deletion_signed_out",
                target=user,
                request=request,
                data=signed_out,
            )
    when = deletion.scheduled_for.strftime("%d %B %Y")
    email = user.email
    transaction.on_commit(
        lambda: send_mail(
            "[Pipetower] Your account will be deleted",
            f"Your Pipetower account is scheduled for deletion on {when}.\n\n"
            "Changed your mind? Sign in before then and the deletion is cancelled.",
            None,
            [email],
        )
    )
    return deletion


def user_signed_out_everywhere(*, user: User) -> dict[str, int]:
    """End every session of `user` and revoke their API tokens; counts of each."""
    from allauth.usersessions.models import UserSession

    from pipetower.api.models import ApiToken

    keys = set(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    UserSession.objects.filter(user=user).delete()
    sessions = Session.objects.filter(session_key__in=keys).delete()[0]
    for session in Session.objects.exclude(session_key__in=keys).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            sessions += 1
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return {"sessions_ended": sessions, "api_tokens_revoked": tokens}


def account_deletion_cancel(*, user: User, request: HttpRequest | None = None) -> bool:
    """Cancel a scheduled deletion (signing in does this); True when one was cancelled."""
    with transaction.atomic():
        cancelled = AccountDeletion.objects.filter(
            user=user, status=AccountDeletion.Status.SCHEDULED
        ).update(status=AccountDeletion.Status.CANCELLED, cancelled_at=timezone.now())
        if cancelled:
            audit_record(
                actor=user, verb="privacy.deletion_cancelled", target=user, request=request
            )
    return bool(cancelled)


def account_deletions_purge(*, now: datetime | None = None) -> int:
    """Erase every account whose grace period has ended; returns how many."""
    now = now or timezone.now()
    count = 0
    due = AccountDeletion.objects.filter(
        status=AccountDeletion.Status.SCHEDULED, scheduled_for__lte=now, user__isnull=False
    ).select_related("user")
    for deletion in due:
        assert deletion.user is not None
        if Run.objects.filter(status__in=ACTIVE_RUN, started_by=deletion.user).exists():
            continue  # waits for its runs; the next purge tries again
        report = account_erase(user=deletion.user, now=now)
        AccountDeletion.objects.filter(pk=deletion.pk).update(
            status=AccountDeletion.Status.COMPLETED, completed_at=now, report=report
        )
        count += 1
    if count:
        sqlite_wal_truncate()
    return count


def team_erase(*, team: Team) -> dict[str, int]:
    """Delete `team` with all it holds, now; answer the counts by model.

    The team's content is declared in the data map as "cascade" team content
    (servers, SSH keys, actions, runs and their output, schedules, invitations,
    memberships, the team's activity log): it goes with the team row. The
    team's data key is destroyed first, so encrypted secrets anywhere else
    (backups, the outbox) can no longer be read. Used for teams an owner
    deleted and for teams owned alone by an erased account.
    """
    if team.data_key:
        crypto.data_key_destroy(data_key=team.data_key)
    _, deleted = team.delete()
    return dict(deleted)


def team_deletions_purge(*, now: datetime | None = None) -> int:
    """Erase every team whose deletion grace period has ended; returns how many.

    A team with runs still in progress (started before it was frozen) waits
    for them; the next purge tries again. Every member is mailed once the team
    is gone, and a team-less activity entry keeps that it happened (the count of
    what was deleted, not the team's name).
    """
    from pipetower.teams.services import team_member_addresses, team_members_mail

    now = now or timezone.now()
    count = 0
    due = Team.objects.filter(deletion_scheduled_for__lte=now).values_list("pk", flat=True)
    for team_id in list(due):
        with transaction.atomic():
            team = Team.objects.select_for_update().filter(pk=team_id).first()
            if team is None or team.deletion_scheduled_for is None:
                continue  # cancelled or erased since the query
            if team.deletion_scheduled_for > now:
                continue
            if Run.objects.filter(team=team, status__in=ACTIVE_RUN).exists():
                continue
            name = team.name
            addresses = team_member_addresses(team=team)
            deleted = team_erase(team=team)
            audit_record(
                actor=None,
                verb="team.erased",
                data={"team_id": team_id, "deleted": deleted},
            )
            team_members_mail(
                addresses=addresses,
                subject=f"The team {name} has been deleted",
                body=(
                    f"The team {name} on Pipetower has been deleted, as one of its owners "
                    "asked: its servers, SSH keys, actions, runs and their output, "
                    "invitations, memberships and activity log are gone. Your own account "
                    "is not affected.\n"
                ),
            )
        count += 1
    if count:
        sqlite_wal_truncate()
    return count


def sqlite_wal_truncate() -> bool:
    """Checkpoint and truncate the SQLite write-ahead log; True when it was emptied.

    Erased rows otherwise stay readable in the `-wal` file until SQLite's own
    checkpoint gets round to it. PostgreSQL needs nothing: its WAL is not
    part of the data directory people copy, and VACUUM reclaims dead rows.
    """
    if connection.vendor != "sqlite":
        return True
    if connection.in_atomic_block:
        return False  # a checkpoint cannot run inside a transaction; the caller's commit first
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _, _ = cursor.fetchone()
    except OperationalError:
        return False  # another connection holds a lock; SQLite checkpoints later
    return not busy


def former_identifiers(*, user: User) -> tuple[set[str], set[str]]:
    """Every address and name `user` has had that history still holds: (emails, names)."""
    from allauth.account.models import EmailAddress
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    emails = {user.email}
    names = {user.name} if user.name else set()
    emails |= set(EmailAddress.objects.filter(user=user).values_list("email", flat=True))
    emails |= set(Invitation.objects.filter(accepted_by=user).values_list("email", flat=True))
    labels = set(AuditEvent.objects.filter(actor=user).values_list("actor_label", flat=True)) | set(
        AuditEvent.objects.filter(target_type="accounts.user", target_id=str(user.pk)).values_list(
            "target_label", flat=True
        )
    )
    user_type = ContentType.objects.get_for_model(User)
    labels |= set(
        LogEntry.objects.filter(content_type=user_type, object_id=str(user.pk)).values_list(
            "object_repr", flat=True
        )
    )
    for label in labels:
        if label and label != "system":
            (emails if "@" in label else names).add(label)
    return {e for e in emails if e}, {n for n in names if n}


def _scrub(value: str, needles: list[str]) -> str:
    """`value` with every needle (any letter case) replaced by ERASED."""
    for needle in needles:
        if needle:
            # Whole words only: a former name "Al" must not turn "Alerts" into nonsense.
            pattern = rf"(?<!\w){re.escape(needle)}(?!\w)"
            value = re.sub(pattern, ERASED, value, flags=re.IGNORECASE)
    return value


def _admin_log_scrub(*, user: User, needles: list[str]) -> int:
    """The staff change log keeps what was changed, not whose name or address it was."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    about = Q(content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk))
    for needle in needles:
        about |= Q(object_repr__icontains=needle) | Q(change_message__icontains=needle)
    count = 0
    for entry in LogEntry.objects.filter(about).distinct():
        entry.object_repr = _scrub(entry.object_repr, needles)[:200]
        entry.change_message = _scrub(entry.change_message, needles)
        if entry.content_type_id == ContentType.objects.get_for_model(User).pk:
            entry.object_repr = ERASED
        entry.save(update_fields=["object_repr", "change_message"])
        count += 1
    return count


def account_erase(*, user: User, now: datetime | None = None) -> DeletionReport:
    """Erase `user` now (the grace period is the caller's business)."""
    now = now or timezone.now()
    held = held_models(user=user, now=now)
    counts: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    email = user.email
    emails, names = former_identifiers(user=user)
    ips = {ip for ip in [user.signup_ip] if ip}
    ips |= {ip for ip in user.signin_events.values_list("ip", flat=True) if ip}
    # Longest first, so "Ada Lovelace" is replaced before "Ada" could split it.
    needles = sorted(emails | names, key=len, reverse=True) + sorted(ips)
    avatar = user.avatar.name if user.avatar else ""
    storage = user.avatar.storage
    files = 0
    sessions = 0

    with transaction.atomic():
        # Teams owned with others: ownership passes to the longest-standing member.
        for team in _shared_owned(user):
            heir = team.memberships.exclude(user=user).order_by("created_at", "id").first()
            if heir and heir.role != Role.OWNER:
                heir.role = Role.OWNER
                heir.save(update_fields=["role"])
        # Teams owned alone go with all they hold.
        for team in _only_owned(user):
            deleted = team_erase(team=team)
            counts.update({"teams (owned alone, with servers, actions and runs)": 1})
            counts.update({f"team content: {k}": v for k, v in deleted.items()})
        counts["memberships"] += Membership.objects.filter(user=user).delete()[0]
        to_person = Q(accepted_by=user)
        for address in emails:
            to_person |= Q(email__iexact=address)
        counts["invitations to the address"] += Invitation.objects.filter(to_person).delete()[0]

        # Declared personal data (the data map).
        for decl in DATA_MAP:
            # The activity log has its own pass below: it keeps what happened, not who.
            if decl.subject is None or decl.model.lower() in {"accounts.user", "audit.auditevent"}:
                continue
            if decl.model in held:
                kept.append({"model": decl.model, "reason": held[decl.model]})
                continue
            try:
                model = apps.get_model(decl.model)
            except LookupError:
                continue
            rows = model._default_manager.filter(**{decl.subject or "pk": user})
            anonymise = {n: fd for n, fd in decl.fields.items() if fd.erasure == "anonymise"}
            # Team content ("cascade") stays with its team; only who did it is removed.
            deleting = decl.team is None and any(
                fd.erasure == "delete" for fd in decl.fields.values()
            )
            if anonymise and not deleting:
                for obj in rows:
                    for fname in anonymise:
                        field = model._meta.get_field(fname)
                        blank: Any = None if field.null else ""
                        setattr(obj, getattr(field, "attname", fname), blank)
                    obj.save()
                    counts[f"{decl.model} anonymised"] += 1
            elif deleting:
                counts[f"{decl.model} deleted"] += rows.delete()[0]

        # Rows found by address, for people with or without an account (subscriptions).
        for decl in DATA_MAP:
            if not decl.subject_email:
                continue
            if decl.model in held:
                kept.append({"model": decl.model, "reason": held[decl.model]})
                continue
            by_address = Q(pk__in=[])
            for address in emails:
                by_address |= Q(**{f"{decl.subject_email}__iexact": address})
            rows = apps.get_model(decl.model)._default_manager.filter(by_address)
            counts[f"{decl.model} deleted"] += rows.delete()[0]

        # The activity log keeps what happened, not who: actor and address scrubbed.
        if "audit.AuditEvent" in held:
            kept.append({"model": "audit.AuditEvent", "reason": held["audit.AuditEvent"]})
        else:
            about = Q(actor=user) | Q(target_type="accounts.user", target_id=str(user.pk))
            tokens = [str(pk) for pk in user.api_tokens.values_list("pk", flat=True)]
            about |= Q(target_type="api.apitoken", target_id__in=tokens)
            for needle in emails | names:
                about |= Q(actor_label__icontains=needle) | Q(target_label__icontains=needle)
                about |= Q(data__icontains=needle)
            for event in AuditEvent.objects.filter(about).distinct():
                if event.target_type == "api.apitoken" and event.target_id in tokens:
                    # A token's label is the person's own words: it goes.
                    event.target_label = "API token"
                    if isinstance(event.data, dict):
                        event.data = {k: v for k, v in event.data.items() if k != "name"}
                was_actor = event.actor_id == user.pk
                event.actor = None
                event.actor_label = (
                    FORMER_MEMBER if was_actor else _scrub(event.actor_label, needles)
                )
                event.target_label = _scrub(event.target_label, needles)
                event.target_id = "" if event.target_type == "accounts.user" else event.target_id
                event.data = json.loads(_scrub(json.dumps(event.data), needles))
                if was_actor or event.ip in ips:
                    event.ip = None
                event.save(
                    update_fields=[
                        "actor",
                        "actor_label",
                        "target_label",
                        "target_id",
                        "data",
                        "ip",
                    ]
                )
                counts["activity-log entries anonymised"] += 1
        if "admin.LogEntry" not in held:
            counts["staff change-log entries anonymised"] += _admin_log_scrub(
                user=user, needles=needles
            )
        if "api.ApiToken" not in held:
            from pipetower.api.models import ApiToken

            counts["API tokens deleted"] += ApiToken.objects.filter(user=user).delete()[0]

        # Sessions end: every signed-in browser is signed out.
        sessions += user_signed_out_everywhere(user=user)["sessions_ended"]
        files += export_files_delete(user=user)

        if user.data_key:
            crypto.data_key_destroy(data_key=user.data_key)
        if held:
            # Held records need their person: the account stays, locked and emptied.
            user.is_active = False
            user.set_unusable_password()
            user.avatar = ""
            user.save(update_fields=["is_active", "password", "avatar"])
            for label, reason in held.items():
                if not any(k["model"] == label for k in kept):
                    kept.append({"model": label, "reason": reason})
            kept.append({"model": "accounts.User", "reason": "needed by the held records"})
        else:
            _, deleted = user.delete()
            counts.update({f"account: {k}": v for k, v in deleted.items()})
        report = DeletionReport.objects.create(
            created_at=now,
            categories=dict(counts),
            kept=kept,
            files_deleted=files + (1 if avatar else 0),
            sessions_ended=sessions,
            data_key_destroyed=True,
        )
        audit_record(
            actor=None,
            verb="privacy.account_erased",
            target=report,
            data={"report": report.pk},
        )
        if avatar:
            transaction.on_commit(lambda: storage.delete(avatar), robust=True)
        transaction.on_commit(
            lambda: send_mail(
                "[Pipetower] Your account has been deleted",
                "Your Pipetower account and its data have been deleted, as you asked. "
                "Only what the law requires us to keep remains, and it is erased as "
                "soon as it no longer must be kept.",
                None,
                [email],
            )
        )
        # Then every message saved for them goes, this last one included.
        addresses = sorted(emails)
        transaction.on_commit(lambda: mail_purge_for(addresses=addresses), robust=True)
    return report

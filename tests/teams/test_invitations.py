"""Invitations: sending, resending, revoking, reading a link, accepting, purging."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, Gone, NotAllowed, ServiceError
from pipetower.teams import services
from pipetower.teams.models import Invitation, Membership, Role
from pipetower.teams.tasks import invitation_send_task, invitations_purge_task
from tests.factories import TeamFactory, UserFactory, member
from tests.teams.conftest import expire, token_in

# --- invitation_create ----------------------------------------------------------


def test_an_invitation_stores_only_a_hash_of_its_token(invite):
    invitation, token = invite("grace@example.com")

    invitation.refresh_from_db()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(getattr(invitation, f.attname)) for f in Invitation._meta.concrete_fields]
    assert not any(token in value for value in stored)


def test_the_link_is_mailed_only_after_the_transaction_commits(
    team, user, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.BASE_URL = "https://pipetower.example.com"

    with django_capture_on_commit_callbacks() as callbacks:
        invitation = services.invitation_create(
            team=team, actor=user, email="grace@example.com", role=Role.OPERATOR
        )
    assert mailoutbox == []  # nothing is sent inside the transaction

    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    token = token_in(mail)
    assert mail.to == ["grace@example.com"]
    assert mail.subject == "[Pipetower] Ada Lovelace invited you to join Analytical Engines"
    assert f"https://pipetower.example.com/teams/join/{token}/" in mail.body
    assert "as operator" in mail.body
    html = mail.alternatives[0][0]
    assert f'href="https://pipetower.example.com/teams/join/{token}/"' in html
    assert invitation.invited_by == user


def test_an_invitation_expires_after_the_configured_time(invite, settings):
    before = timezone.now()
    invitation, _ = invite()

    assert invitation.expires_at - before >= settings.INVITATION_TTL
    assert invitation.expires_at - before < settings.INVITATION_TTL + timedelta(minutes=1)
    assert timedelta(days=7) == settings.INVITATION_TTL


def test_inviting_writes_an_audit_event_without_the_token(invite, user):
    invitation, token = invite("Grace@Example.com", Role.VIEWER)

    assert invitation.email == "grace@example.com"
    event = AuditEvent.objects.get(verb="invitation.created")
    assert event.actor == user
    assert event.data == {"email": "grace@example.com", "role": "viewer"}
    assert token not in str(event.data) + event.target_label


def test_inviting_someone_already_in_the_team_is_a_conflict(team, user, make_member):
    make_member(Role.VIEWER, email="grace@example.com")

    with pytest.raises(Conflict) as caught:
        services.invitation_create(
            team=team, actor=user, email="GRACE@example.com", role=Role.ADMIN
        )

    assert caught.value.message == "grace@example.com is already a member of this team."
    assert caught.value.field == "email"
    assert not Invitation.objects.exists()


def test_a_second_pending_invitation_for_the_same_address_is_a_conflict(invite, team, user):
    invite("grace@example.com")

    with pytest.raises(Conflict, match="already has a pending invitation"):
        services.invitation_create(
            team=team, actor=user, email="grace@example.com", role=Role.VIEWER
        )

    assert Invitation.objects.count() == 1


def test_an_expired_invitation_does_not_block_a_new_one(invite):
    old, _ = invite("grace@example.com")
    expire(old)

    new, _ = invite("grace@example.com")

    assert new.pk != old.pk


def test_the_same_address_may_be_invited_to_two_teams(invite, user):
    other = TeamFactory()
    Membership.objects.create(team=other, user=user, role=Role.OWNER)

    invite("grace@example.com")
    invite("grace@example.com", to=other)

    assert Invitation.objects.filter(email="grace@example.com").count() == 2


def test_an_admin_cannot_invite_an_owner(team, make_member):
    admin = make_member(Role.ADMIN)

    with pytest.raises(NotAllowed) as caught:
        services.invitation_create(
            team=team, actor=admin, email="grace@example.com", role=Role.OWNER
        )

    assert caught.value.message == (
        "Only an owner can make someone owner. As admin you can choose admin, operator, viewer."
    )


def test_an_admin_may_invite_another_admin(invite, make_member):
    admin = make_member(Role.ADMIN)

    invitation, _ = invite("grace@example.com", Role.ADMIN, by=admin)

    assert invitation.role == Role.ADMIN


def test_an_owner_may_invite_an_owner(invite):
    invitation, _ = invite("grace@example.com", Role.OWNER)

    assert invitation.role == Role.OWNER


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_invite(team, make_member, role):
    actor = make_member(role)

    with pytest.raises(NotAllowed, match="Only team owners and admins"):
        services.invitation_create(
            team=team, actor=actor, email="grace@example.com", role=Role.VIEWER
        )


def test_someone_outside_the_team_cannot_invite(team):
    with pytest.raises(NotAllowed, match="not a member"):
        services.invitation_create(
            team=team, actor=UserFactory(), email="grace@example.com", role=Role.VIEWER
        )


@pytest.mark.parametrize("email", ["", "grace", "grace@", "a b@example.com"])
def test_an_invalid_address_is_refused(team, user, email):
    with pytest.raises(ServiceError) as caught:
        services.invitation_create(team=team, actor=user, email=email, role=Role.VIEWER)

    assert (caught.value.field, caught.value.message) == ("email", "Enter a valid email address.")


def test_an_unknown_role_is_refused(team, user):
    with pytest.raises(ServiceError) as caught:
        services.invitation_create(team=team, actor=user, email="grace@example.com", role="root")

    assert caught.value.field == "role"


# --- invitation_resend ------------------------------------------------------------


def test_resending_mails_a_new_link_and_the_old_one_stops_working(
    invite, user, django_capture_on_commit_callbacks, mailoutbox
):
    invitation, old_token = invite()
    expire(invitation)

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_resend(invitation=invitation, actor=user)

    new_token = token_in(mailoutbox[-1])
    assert new_token != old_token
    assert len(mailoutbox) == 2
    assert invitation.is_pending  # the caller's object sees the new expiry
    with pytest.raises(ServiceError, match="not valid"):
        services.invitation_get_by_token(token=old_token)
    assert services.invitation_get_by_token(token=new_token).pk == invitation.pk
    assert AuditEvent.objects.filter(verb="invitation.resent").count() == 1


def test_a_send_queued_before_a_resend_mails_nothing(invite, user, mailoutbox):
    invitation, old_token = invite()
    services.invitation_resend(invitation=invitation, actor=user)  # its mail is not sent here
    sent = len(mailoutbox)

    invitation_send_task.delay(invitation.pk, old_token)

    assert len(mailoutbox) == sent


def test_an_accepted_invitation_cannot_be_resent(invite, user):
    invitation, token = invite()
    services.invitation_accept(token=token, user=UserFactory())

    with pytest.raises(Conflict, match="already accepted"):
        services.invitation_resend(invitation=invitation, actor=user)


def test_a_revoked_invitation_cannot_be_resent(invite, user):
    invitation, _ = invite()
    services.invitation_revoke(invitation=invitation, actor=user)

    with pytest.raises(Conflict, match="was revoked"):
        services.invitation_resend(invitation=invitation, actor=user)


def test_an_admin_cannot_resend_or_revoke_an_owner_invitation(invite, make_member):
    admin = make_member(Role.ADMIN)
    invitation, _ = invite(role=Role.OWNER)

    with pytest.raises(NotAllowed):
        services.invitation_resend(invitation=invitation, actor=admin)
    with pytest.raises(NotAllowed):
        services.invitation_revoke(invitation=invitation, actor=admin)


# --- invitation_revoke ------------------------------------------------------------


def test_revoking_makes_the_link_say_it_was_withdrawn(invite, user):
    invitation, token = invite()

    services.invitation_revoke(invitation=invitation, actor=user)

    assert invitation.state == "revoked"
    with pytest.raises(Gone, match="withdrawn"):
        services.invitation_get_by_token(token=token)
    assert AuditEvent.objects.filter(verb="invitation.revoked", actor=user).count() == 1


def test_revoking_twice_is_a_conflict(invite, user):
    invitation, _ = invite()
    services.invitation_revoke(invitation=invitation, actor=user)

    with pytest.raises(Conflict, match="already"):
        services.invitation_revoke(invitation=invitation, actor=user)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_revoke(invite, make_member, role):
    invitation, _ = invite()

    with pytest.raises(NotAllowed):
        services.invitation_revoke(invitation=invitation, actor=make_member(role))

    invitation.refresh_from_db()
    assert invitation.revoked_at is None


# --- invitation_get_by_token --------------------------------------------------------


def test_a_pending_token_gives_its_invitation(invite):
    invitation, token = invite()

    assert services.invitation_get_by_token(token=token) == invitation


def test_an_expired_token_says_when_it_expired(invite):
    invitation, token = invite()
    expire(invitation, ago=timedelta(days=2))

    with pytest.raises(Gone) as caught:
        services.invitation_get_by_token(token=token)

    assert caught.value.code == "invitation_expired"
    assert caught.value.message.startswith("This invitation expired on ")
    assert "send you a new one" in caught.value.message


def test_a_used_token_says_it_was_used(invite):
    _, token = invite()
    services.invitation_accept(token=token, user=UserFactory())

    with pytest.raises(Gone) as caught:
        services.invitation_get_by_token(token=token)

    assert caught.value.code == "invitation_used"
    assert "already been used" in caught.value.message


def test_a_revoked_token_says_it_was_revoked(invite, user):
    invitation, token = invite()
    services.invitation_revoke(invitation=invitation, actor=user)

    with pytest.raises(Gone) as caught:
        services.invitation_get_by_token(token=token)

    assert caught.value.code == "invitation_revoked"


@pytest.mark.parametrize(
    "token", ["", "short", "x" * 500, "../../etc/passwd", "a" * 43 + "\n", "Z" * 43]
)
def test_a_malformed_or_unknown_token_is_not_valid(db, token):
    with pytest.raises(ServiceError) as caught:
        services.invitation_get_by_token(token=token)

    assert not isinstance(caught.value, Gone)
    assert caught.value.message.startswith("This invitation link is not valid.")


def test_the_hash_itself_does_not_work_as_a_token(invite):
    invitation, _ = invite()

    with pytest.raises(ServiceError, match="not valid"):
        services.invitation_get_by_token(token=invitation.token_hash)


# --- invitation_accept ------------------------------------------------------------------


def test_accepting_joins_the_team_with_the_invited_role(invite, team):
    invitation, token = invite("grace@example.com", Role.OPERATOR)
    grace = UserFactory(email="grace@example.com")

    membership = services.invitation_accept(token=token, user=grace)

    assert (membership.team, membership.user, membership.role) == (team, grace, Role.OPERATOR)
    invitation.refresh_from_db()
    assert invitation.state == "accepted"
    assert invitation.accepted_by == grace
    event = AuditEvent.objects.get(verb="invitation.accepted")
    assert (event.actor, event.team) == (grace, team)


def test_an_invitation_works_only_once(invite, team):
    _, token = invite()
    services.invitation_accept(token=token, user=UserFactory())
    second = UserFactory()

    with pytest.raises(Gone, match="already been used"):
        services.invitation_accept(token=token, user=second)

    assert not Membership.objects.filter(team=team, user=second).exists()


def test_accepting_while_already_a_member_is_a_conflict_and_keeps_the_invitation(
    invite, team, make_member
):
    viewer = make_member(Role.VIEWER)
    invitation, token = invite("someone@example.com", Role.ADMIN)

    with pytest.raises(Conflict, match="already a member of Analytical Engines"):
        services.invitation_accept(token=token, user=viewer)

    invitation.refresh_from_db()
    assert invitation.is_pending
    assert Membership.objects.get(team=team, user=viewer).role == Role.VIEWER


def test_an_expired_invitation_cannot_be_accepted(invite):
    invitation, token = invite()
    expire(invitation)

    with pytest.raises(Gone, match="expired"):
        services.invitation_accept(token=token, user=UserFactory())


def test_accepting_needs_a_signed_in_user(invite):
    from django.contrib.auth.models import AnonymousUser

    _, token = invite()

    with pytest.raises(NotAllowed, match="Sign in"):
        services.invitation_accept(token=token, user=AnonymousUser())  # type: ignore[arg-type]


# --- tasks -----------------------------------------------------------------------------


def test_the_purge_deletes_invitations_expired_more_than_30_days_ago(invite):
    old, _ = invite("old@example.com")
    expire(old, ago=timedelta(days=31))
    recent, _ = invite("recent@example.com")
    expire(recent, ago=timedelta(days=29))
    invite("pending@example.com")

    deleted = invitations_purge_task.delay().get()

    assert deleted == 1
    assert set(Invitation.objects.values_list("email", flat=True)) == {
        "recent@example.com",
        "pending@example.com",
    }


def test_the_send_task_mails_nothing_for_a_revoked_invitation(invite, user, mailoutbox):
    invitation, token = invite()
    services.invitation_revoke(invitation=invitation, actor=user)
    sent = len(mailoutbox)

    invitation_send_task.delay(invitation.pk, token)
    invitation_send_task.delay(999_999, token)

    assert len(mailoutbox) == sent


def test_invitations_of_other_teams_are_untouched_by_a_members_conflict(user):
    """A member of team A with the invited address does not block an invitation to team B."""
    team_b = TeamFactory()
    Membership.objects.create(team=team_b, user=user, role=Role.OWNER)
    member(TeamFactory(), Role.VIEWER, email="grace@example.com")

    invitation = services.invitation_create(
        team=team_b, actor=user, email="grace@example.com", role=Role.VIEWER
    )

    assert invitation.team == team_b

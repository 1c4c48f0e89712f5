"""The members page: who is in the team, and the controls each role gets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipetower.teams.models import Invitation, Membership, Role
from tests.teams.conftest import expire


def page(response) -> str:
    return response.content.decode()


def members_url(team) -> str:
    return reverse("teams:members", args=[team.slug])


def role_url(team, user) -> str:
    return reverse("teams:member_role", args=[team.slug, Membership.objects.get(user=user).pk])


def remove_url(team, user) -> str:
    return reverse("teams:member_remove", args=[team.slug, Membership.objects.get(user=user).pk])


# --- what each role sees ----------------------------------------------------------------


def test_members_are_listed_with_role_badges_owners_first(owner_client, team, make_member):
    make_member(Role.VIEWER, name="Vera Viewer")
    make_member(Role.ADMIN, name="Alan Admin")

    html = page(owner_client.get(members_url(team)))

    assert html.index("Ada Lovelace") < html.index("Alan Admin") < html.index("Vera Viewer")
    assert '<span class="badge badge-owner">Owner</span>' in html
    assert '<span class="badge badge-admin">Admin</span>' in html
    assert '<span class="badge badge-viewer">Viewer</span>' in html
    assert "3 members" in html


def test_an_owner_gets_role_and_remove_controls_for_others(owner_client, team, user, make_member):
    viewer = make_member(Role.VIEWER, name="Vera Viewer")

    html = page(owner_client.get(members_url(team)))

    assert role_url(team, viewer) in html
    assert remove_url(team, viewer) in html
    assert 'aria-label="Role of Vera Viewer"' in html
    assert '<option value="owner">Owner</option>' in html
    # The only owner can neither be demoted nor removed, so no controls for them.
    assert role_url(team, user) not in html
    assert remove_url(team, user) not in html
    assert 'name="email"' in html  # the invite form


def test_an_admin_sees_no_controls_on_owners_and_cannot_offer_owner(
    client, team, user, make_member
):
    admin = make_member(Role.ADMIN)
    operator = make_member(Role.OPERATOR)
    client.force_login(admin)

    html = page(client.get(members_url(team)))

    assert role_url(team, user) not in html
    assert remove_url(team, user) not in html
    assert role_url(team, operator) in html
    assert 'value="owner"' not in html  # neither in role selects nor in the invite form


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_see_members_but_no_controls(client, team, make_member, role):
    me = make_member(role)
    other = make_member(Role.VIEWER)
    client.force_login(me)

    html = page(client.get(members_url(team)))

    assert "Ada Lovelace" in html
    assert role_url(team, other) not in html
    assert remove_url(team, other) not in html
    assert 'name="email"' not in html
    assert "Invitations" not in html


# --- changing roles and removing ----------------------------------------------------------


def test_an_owner_changes_a_members_role(owner_client, team, make_member):
    viewer = make_member(Role.VIEWER, name="Vera Viewer")

    response = owner_client.post(role_url(team, viewer), {"role": "operator"}, follow=True)

    assert Membership.objects.get(user=viewer).role == Role.OPERATOR
    assert "Vera Viewer is now operator." in page(response)


def test_an_admin_demoting_an_owner_is_told_no(client, team, user, make_member):
    admin = make_member(Role.ADMIN)
    make_member(Role.OWNER)
    client.force_login(admin)

    response = client.post(role_url(team, user), {"role": "viewer"}, follow=True)

    assert "Only an owner can change an owner&#x27;s role." in page(response)
    assert Membership.objects.get(user=user).role == Role.OWNER


def test_an_admin_promoting_someone_to_owner_is_told_no(client, team, make_member):
    admin, operator = make_member(Role.ADMIN), make_member(Role.OPERATOR)
    client.force_login(admin)

    response = client.post(role_url(team, operator), {"role": "owner"}, follow=True)

    assert "Only an owner can make someone owner." in page(response)
    assert Membership.objects.get(user=operator).role == Role.OPERATOR


def test_an_admin_raising_their_own_role_is_told_no(client, team, make_member):
    admin = make_member(Role.ADMIN)
    client.force_login(admin)

    response = client.post(role_url(team, admin), {"role": "owner"}, follow=True)

    assert "You cannot raise your own role." in page(response)
    assert Membership.objects.get(user=admin).role == Role.ADMIN


def test_the_last_owner_demoting_themselves_is_told_why_not(owner_client, team, user):
    response = owner_client.post(role_url(team, user), {"role": "admin"}, follow=True)

    assert "is the last owner of this team. Make someone else an owner first." in page(response)
    assert Membership.objects.get(user=user).role == Role.OWNER


def test_a_made_up_role_is_refused_with_a_message(owner_client, team, make_member):
    viewer = make_member(Role.VIEWER)

    response = owner_client.post(role_url(team, viewer), {"role": "emperor"}, follow=True)

    assert "Choose a role from the list." in page(response)
    assert Membership.objects.get(user=viewer).role == Role.VIEWER


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_post_role_changes(client, team, make_member, role):
    me, other = make_member(role), make_member(Role.VIEWER)
    client.force_login(me)

    assert client.post(role_url(team, other), {"role": "admin"}).status_code == 403
    assert client.post(role_url(team, me), {"role": "admin"}).status_code == 403
    assert client.post(remove_url(team, other)).status_code == 403
    assert Membership.objects.get(user=other).role == Role.VIEWER


def test_an_owner_removes_a_member(owner_client, team, make_member):
    viewer = make_member(Role.VIEWER, name="Vera Viewer")

    response = owner_client.post(remove_url(team, viewer), follow=True)

    assert "Vera Viewer was removed from the team." in page(response)
    assert not Membership.objects.filter(user=viewer).exists()


def test_removing_the_last_owner_is_refused_with_a_message(client, team, user, make_member):
    client.force_login(user)

    response = client.post(remove_url(team, user), follow=True)

    assert "last owner of this team and cannot be removed" in page(response)
    assert Membership.objects.filter(user=user).exists()


def test_role_changes_need_post(owner_client, team, make_member):
    viewer = make_member(Role.VIEWER)

    assert owner_client.get(role_url(team, viewer)).status_code == 405


# --- invitations on the page -----------------------------------------------------------------


def test_inviting_from_the_page_mails_the_link(
    owner_client, team, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            members_url(team), {"email": "grace@example.com", "role": "operator"}, follow=True
        )

    html = page(response)
    # The page was drawn before the email task ran (after the commit): it says so.
    assert "Invitation is being sent to grace@example.com. The link works for 7 days." in html
    assert mailoutbox[0].to == ["grace@example.com"]
    assert "grace@example.com" in html
    assert '<span class="badge badge-pending">Pending</span>' in html


def test_inviting_a_member_shows_the_conflict_next_to_the_email(owner_client, team, make_member):
    make_member(Role.VIEWER, email="vera@example.com")

    response = owner_client.post(members_url(team), {"email": "vera@example.com", "role": "admin"})

    assert response.status_code == 400
    html = page(response)
    assert "vera@example.com is already a member of this team." in html
    assert 'aria-invalid="true"' in html
    assert not Invitation.objects.exists()


def test_a_duplicate_pending_invitation_is_refused_on_the_page(owner_client, team, invite):
    invite("grace@example.com")

    response = owner_client.post(
        members_url(team), {"email": "grace@example.com", "role": "viewer"}
    )

    assert response.status_code == 400
    assert "already has a pending invitation" in page(response)
    assert Invitation.objects.count() == 1


def test_a_bad_address_shows_a_field_error(owner_client, team):
    response = owner_client.post(members_url(team), {"email": "not an address", "role": "viewer"})

    assert response.status_code == 400
    assert "Enter a valid email address." in page(response)


def test_an_admin_posting_the_owner_role_gets_a_form_error(client, team, make_member):
    client.force_login(make_member(Role.ADMIN))

    response = client.post(members_url(team), {"email": "grace@example.com", "role": "owner"})

    assert response.status_code == 400
    assert "Select a valid choice." in page(response)
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_post_invitations(client, team, make_member, role):
    client.force_login(make_member(role))

    response = client.post(members_url(team), {"email": "grace@example.com", "role": "viewer"})

    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_pending_and_expired_invitations_are_listed_with_their_state(owner_client, team, invite):
    invite("pending@example.com")
    expired, _ = invite("expired@example.com")
    expire(expired)

    html = page(owner_client.get(members_url(team)))

    assert '<span class="badge badge-pending">Pending</span>' in html
    assert '<span class="badge badge-expired">Expired</span>' in html
    assert reverse("teams:invitation_resend", args=[team.slug, expired.pk]) in html


def test_resending_from_the_page(
    owner_client, team, invite, django_capture_on_commit_callbacks, mailoutbox
):
    invitation, _ = invite("grace@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("teams:invitation_resend", args=[team.slug, invitation.pk]), follow=True
        )

    assert "A new invitation link was sent to grace@example.com." in page(response)
    assert len(mailoutbox) == 2


def test_revoking_from_the_page_removes_it_from_the_list(owner_client, team, invite):
    invitation, _ = invite("grace@example.com")

    response = owner_client.post(
        reverse("teams:invitation_revoke", args=[team.slug, invitation.pk]), follow=True
    )

    html = page(response)
    assert "The invitation for grace@example.com was revoked." in html
    assert "No open invitations." in html
    invitation.refresh_from_db()
    assert invitation.state == "revoked"


def test_revoking_an_already_revoked_invitation_says_so(owner_client, team, invite, user):
    from pipetower.teams.services import invitation_revoke

    invitation, _ = invite("grace@example.com")
    invitation_revoke(invitation=invitation, actor=user)

    response = owner_client.post(
        reverse("teams:invitation_revoke", args=[team.slug, invitation.pk]), follow=True
    )

    assert "This invitation was already revoked." in page(response)


def test_an_admin_is_not_offered_buttons_for_an_owner_invitation(client, team, invite, make_member):
    invitation, _ = invite("boss@example.com", Role.OWNER)
    client.force_login(make_member(Role.ADMIN))

    html = page(client.get(members_url(team)))

    assert "boss@example.com" in html
    assert reverse("teams:invitation_revoke", args=[team.slug, invitation.pk]) not in html
    assert "Only an owner can change this invitation." in html


# --- query counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 30])
def test_the_members_page_needs_the_same_few_queries_at_any_size(
    owner_client, team, make_member, invite, size, django_assert_max_num_queries
):
    for n in range(size):
        make_member(list(Role)[n % 4])
    for n in range(size // 3):
        invite(f"invitee{n}@example.com")

    owner_client.get(members_url(team))  # the first request also records the session

    # session, user, activity tracking of the user session (5, with savepoints),
    # then the page's own: my membership, members with users, invitations with
    # who sent them, the team switcher.
    with django_assert_max_num_queries(12):  # one more: which invitations are still sending
        response = owner_client.get(members_url(team))

    assert response.status_code == 200
    assert page(response).count('class="badge badge-') >= size + size // 3

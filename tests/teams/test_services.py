"""Teams and memberships: creating, renaming, roles, removing, leaving."""

from __future__ import annotations

import re

import pytest

from pipetower.audit.models import AuditEvent
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.teams import services
from pipetower.teams.models import Membership, Role, Team
from tests.factories import TeamFactory, UserFactory, member


def membership(team: Team, user) -> Membership:
    return Membership.objects.get(team=team, user=user)


# --- team_create -------------------------------------------------------------


def test_creating_a_team_makes_the_creator_its_owner(user):
    team = services.team_create(user=user, name="Difference Engines")

    assert team.name == "Difference Engines"
    assert team.slug == "difference-engines"
    assert team.created_by == user
    assert membership(team, user).role == Role.OWNER
    event = AuditEvent.objects.get(team=team)
    assert (event.verb, event.actor, event.target_label) == ("team.created", user, team.name)


def test_team_slugs_stay_unique_when_names_repeat(user):
    first = services.team_create(user=user, name="Ops")
    second = services.team_create(user=user, name="Ops")
    third = services.team_create(user=user, name="ops!")

    assert [first.slug, second.slug, third.slug] == ["ops", "ops-2", "ops-3"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Ünïcødé 🚀 团队", "unicode-tuandui"),
        ("運用チーム", "yunyongchimu"),
        ("Straße Ærø Łódź", "strasse-aero-lodz"),
        ("مرحبا", "mrhb"),
    ],
)
def test_names_in_any_script_get_a_readable_address(user, name, slug):
    assert services.team_create(user=user, name=name).slug == slug


def test_a_name_with_nothing_readable_gets_a_short_id(user):
    first = services.team_create(user=user, name="!!!")
    second = services.team_create(user=user, name="🚀")

    for team in (first, second):
        assert re.fullmatch(r"team-[0-9a-f]{6}", team.slug), team.slug
    assert first.slug != second.slug


def test_fixed_paths_under_teams_are_never_used_as_slugs(user):
    assert services.team_create(user=user, name="New").slug == "new-team"
    assert services.team_create(user=user, name="Join").slug == "join-team"


def test_the_name_is_trimmed_and_inner_spaces_collapsed(user):
    assert services.team_create(user=user, name="  Night   shift ").name == "Night shift"


@pytest.mark.parametrize("name", ["", "   "])
def test_a_blank_team_name_is_refused(user, name):
    with pytest.raises(ServiceError) as caught:
        services.team_create(user=user, name=name)

    assert caught.value.field == "name"
    assert caught.value.message == "Give the team a name."
    assert not Team.objects.exists()


def test_an_overlong_team_name_is_refused(user):
    with pytest.raises(ServiceError, match="at most 100 characters"):
        services.team_create(user=user, name="x" * 101)


# --- team_update -------------------------------------------------------------


def test_an_admin_renames_the_team_and_its_address_stays(team, make_member):
    admin = make_member(Role.ADMIN)

    services.team_update(team=team, actor=admin, name="Engines Ltd")

    team.refresh_from_db()
    assert (team.name, team.slug) == ("Engines Ltd", "engines")
    event = AuditEvent.objects.get(verb="team.renamed")
    assert event.actor == admin
    assert event.data == {"from": "Analytical Engines", "to": "Engines Ltd"}


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_rename_the_team(team, make_member, role):
    with pytest.raises(NotAllowed, match="Only team owners and admins"):
        services.team_update(team=team, actor=make_member(role), name="Mine now")

    team.refresh_from_db()
    assert team.name == "Analytical Engines"


def test_someone_outside_the_team_cannot_rename_it(team):
    with pytest.raises(NotAllowed, match="not a member"):
        services.team_update(team=team, actor=UserFactory(), name="Hijacked")


# --- membership_change_role ---------------------------------------------------


def test_an_owner_can_make_a_member_an_owner(team, user, make_member):
    viewer = make_member(Role.VIEWER)

    services.membership_change_role(
        membership=membership(team, viewer), actor=user, role=Role.OWNER
    )

    assert membership(team, viewer).role == Role.OWNER
    event = AuditEvent.objects.get(verb="member.role_changed")
    assert event.data == {"from": "viewer", "to": "owner"}
    assert event.target_id == str(viewer.pk)


def test_an_admin_can_promote_an_operator_to_admin(team, make_member):
    admin, operator = make_member(Role.ADMIN), make_member(Role.OPERATOR)

    result = services.membership_change_role(
        membership=membership(team, operator), actor=admin, role="admin"
    )

    assert result.role == Role.ADMIN
    assert membership(team, operator).role == Role.ADMIN


def test_an_admin_cannot_make_anyone_an_owner(team, make_member):
    admin, operator = make_member(Role.ADMIN), make_member(Role.OPERATOR)

    with pytest.raises(NotAllowed, match="Only an owner can make someone owner"):
        services.membership_change_role(
            membership=membership(team, operator), actor=admin, role=Role.OWNER
        )

    assert membership(team, operator).role == Role.OPERATOR


def test_an_admin_cannot_change_an_owners_role(team, user, make_member):
    admin = make_member(Role.ADMIN)
    make_member(Role.OWNER)  # so the last-owner rule is not what refuses

    with pytest.raises(NotAllowed, match="Only an owner can change an owner's role"):
        services.membership_change_role(
            membership=membership(team, user), actor=admin, role=Role.VIEWER
        )

    assert membership(team, user).role == Role.OWNER


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_change_roles(team, make_member, role):
    actor, other = make_member(role), make_member(Role.VIEWER)

    with pytest.raises(NotAllowed, match="Only team owners and admins"):
        services.membership_change_role(
            membership=membership(team, other), actor=actor, role=Role.VIEWER
        )


@pytest.mark.parametrize(
    ("own", "wanted"),
    [(Role.ADMIN, Role.OWNER), (Role.OPERATOR, Role.ADMIN), (Role.VIEWER, Role.OPERATOR)],
)
def test_nobody_can_raise_their_own_role(team, make_member, own, wanted):
    actor = make_member(own)

    with pytest.raises(NotAllowed, match="You cannot raise your own role"):
        services.membership_change_role(
            membership=membership(team, actor), actor=actor, role=wanted
        )

    assert membership(team, actor).role == own


def test_an_admin_may_lower_their_own_role(team, make_member):
    admin = make_member(Role.ADMIN)

    services.membership_change_role(
        membership=membership(team, admin), actor=admin, role=Role.VIEWER
    )

    assert membership(team, admin).role == Role.VIEWER


def test_the_last_owner_cannot_be_demoted(team, user):
    with pytest.raises(Conflict, match="last owner"):
        services.membership_change_role(
            membership=membership(team, user), actor=user, role=Role.ADMIN
        )

    assert membership(team, user).role == Role.OWNER


def test_with_two_owners_one_may_step_down(team, user, make_member):
    make_member(Role.OWNER)

    services.membership_change_role(membership=membership(team, user), actor=user, role=Role.ADMIN)

    assert membership(team, user).role == Role.ADMIN


def test_an_unknown_role_is_refused_with_the_choices(team, user, make_member):
    viewer = make_member(Role.VIEWER)

    with pytest.raises(ServiceError) as caught:
        services.membership_change_role(
            membership=membership(team, viewer), actor=user, role="superuser"
        )

    assert caught.value.field == "role"
    assert caught.value.message == "Choose a role: owner, admin, operator, viewer."


def test_a_member_of_another_team_cannot_change_roles_here(team, make_member):
    other_team = TeamFactory()
    outsider = member(other_team, Role.OWNER)
    viewer = make_member(Role.VIEWER)

    with pytest.raises(NotAllowed, match="not a member"):
        services.membership_change_role(
            membership=membership(team, viewer), actor=outsider, role=Role.ADMIN
        )


# --- membership_remove --------------------------------------------------------


def test_an_admin_removes_an_operator(team, make_member):
    admin, operator = make_member(Role.ADMIN), make_member(Role.OPERATOR)

    services.membership_remove(membership=membership(team, operator), actor=admin)

    assert not Membership.objects.filter(team=team, user=operator).exists()
    event = AuditEvent.objects.get(verb="member.removed")
    assert (event.actor, event.target_id, event.data) == (
        admin,
        str(operator.pk),
        {"role": "operator"},
    )


def test_an_admin_cannot_remove_an_owner(team, user, make_member):
    admin = make_member(Role.ADMIN)
    make_member(Role.OWNER)

    with pytest.raises(NotAllowed, match="Only an owner can remove an owner"):
        services.membership_remove(membership=membership(team, user), actor=admin)

    assert Membership.objects.filter(team=team, user=user).exists()


def test_an_owner_removes_another_owner(team, user, make_member):
    other_owner = make_member(Role.OWNER)

    services.membership_remove(membership=membership(team, other_owner), actor=user)

    assert not Membership.objects.filter(team=team, user=other_owner).exists()


def test_the_last_owner_cannot_be_removed(team, user):
    with pytest.raises(Conflict, match="last owner of this team and cannot be removed"):
        services.membership_remove(membership=membership(team, user), actor=user)

    assert Membership.objects.filter(team=team, user=user).exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_remove_members(team, make_member, role):
    actor, other = make_member(role), make_member(Role.VIEWER)

    with pytest.raises(NotAllowed):
        services.membership_remove(membership=membership(team, other), actor=actor)

    assert Membership.objects.filter(team=team, user=other).exists()


def test_removing_someone_already_gone_says_so(team, user, make_member):
    viewer = make_member(Role.VIEWER)
    stale = membership(team, viewer)
    Membership.objects.filter(pk=stale.pk).delete()

    with pytest.raises(Conflict, match="no longer a member"):
        services.membership_remove(membership=stale, actor=user)


# --- team_leave ----------------------------------------------------------------


def test_a_viewer_leaves_the_team(team, make_member):
    viewer = make_member(Role.VIEWER)

    services.team_leave(team=team, user=viewer)

    assert not Membership.objects.filter(team=team, user=viewer).exists()
    event = AuditEvent.objects.get(verb="member.left")
    assert event.actor == viewer


def test_the_last_owner_cannot_leave(team, user, make_member):
    make_member(Role.ADMIN)

    with pytest.raises(Conflict, match="You are the last owner"):
        services.team_leave(team=team, user=user)

    assert membership(team, user).role == Role.OWNER


def test_an_owner_may_leave_when_another_owner_remains(team, user, make_member):
    make_member(Role.OWNER)

    services.team_leave(team=team, user=user)

    assert not Membership.objects.filter(team=team, user=user).exists()


def test_leaving_a_team_you_are_not_in_is_refused(team):
    with pytest.raises(ServiceError, match="not a member"):
        services.team_leave(team=team, user=UserFactory())

"""Team list, create, overview, settings and leave pages; team isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipetower.teams.models import Membership, Role, Team
from tests.factories import TeamFactory, UserFactory, member


def page(response) -> str:
    return response.content.decode()


# --- team list ---------------------------------------------------------------------


def test_someone_without_a_team_is_invited_to_create_their_first(client, user):
    client.force_login(user)

    response = client.get(reverse("teams:list"))

    assert response.status_code == 200
    assert "You are not in a team yet" in page(response)
    assert f'href="{reverse("teams:create")}"' in page(response)
    assert "Create your first team" in page(response)


def test_the_team_list_shows_each_team_with_my_role_and_size(owner_client, user, team, make_member):
    make_member(Role.VIEWER)
    Membership.objects.create(team=TeamFactory(name="Babbage Works"), user=user, role=Role.VIEWER)
    TeamFactory(name="Not Mine")

    html = page(owner_client.get(reverse("teams:list")))

    assert "Analytical Engines" in html and "Babbage Works" in html
    assert "Not Mine" not in html
    assert '<span class="badge badge-owner">Owner</span>' in html
    assert '<span class="badge badge-viewer">Viewer</span>' in html
    assert "<td>2</td>" in html  # the engines team has two members
    assert "<td>1</td>" in html


def test_pages_need_a_signed_in_user(client, team):
    for url in (
        reverse("teams:list"),
        reverse("teams:create"),
        reverse("teams:detail", args=[team.slug]),
        reverse("teams:members", args=[team.slug]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


# --- create ----------------------------------------------------------------------------


def test_creating_a_team_lands_on_its_page_as_owner(client, user):
    client.force_login(user)

    response = client.post(reverse("teams:create"), {"name": "Night Shift"}, follow=True)

    team = Team.objects.get(name="Night Shift")
    assert response.redirect_chain[-1][0] == reverse("teams:detail", args=[team.slug])
    assert Membership.objects.get(team=team, user=user).role == Role.OWNER
    assert "Team Night Shift created. You are its owner." in page(response)


def test_the_create_form_focuses_its_field(client, user):
    client.force_login(user)

    html = page(client.get(reverse("teams:create")))

    assert '<label for="id_name">Team name:</label>' in html
    assert "autofocus" in html


def test_a_blank_name_shows_the_error_next_to_the_field(client, user):
    client.force_login(user)

    response = client.post(reverse("teams:create"), {"name": "   "})

    assert response.status_code == 400
    html = page(response)
    assert "This field is required." in html
    assert 'aria-invalid="true"' in html
    assert not Team.objects.exists()


# --- overview and the team switcher ----------------------------------------------------


def test_the_overview_names_the_team_in_the_switcher(owner_client, team):
    TeamFactory(name="Other Team")  # not mine: must not be listed

    html = page(owner_client.get(reverse("teams:detail", args=[team.slug])))

    assert "<summary><bdi>Analytical Engines</bdi></summary>" in html
    assert f'href="{reverse("teams:detail", args=[team.slug])}" aria-current="true"' in html
    assert "Other Team" not in html
    assert f'href="{reverse("teams:members", args=[team.slug])}"' in html
    assert f'href="{reverse("audit:activity", args=[team.slug])}"' in html


def test_same_named_teams_are_told_apart_in_the_switcher(owner_client, user, team):
    from pipetower.teams import services

    twin = services.team_create(user=user, name=team.name)

    html = page(owner_client.get(reverse("teams:list")))

    assert twin.slug != team.slug
    assert f'<span class="switcher-slug">/{team.slug}</span>' in html
    assert f'<span class="switcher-slug">/{twin.slug}</span>' in html


def test_the_team_list_page_has_no_current_team(owner_client):
    html = page(owner_client.get(reverse("teams:list")))

    assert "<summary>Teams</summary>" in html


def test_the_overview_shows_recent_activity(owner_client, team):
    owner_client.post(reverse("teams:settings", args=[team.slug]), {"name": "Engines Ltd"})

    html = page(owner_client.get(reverse("teams:detail", args=[team.slug])))

    assert "renamed the team to" in html  # in words, not the event code


def test_the_last_owner_is_told_why_they_cannot_leave(owner_client, team):
    html = page(owner_client.get(reverse("teams:detail", args=[team.slug])))

    assert "You are the last owner of this team." in html
    assert reverse("teams:leave", args=[team.slug]) not in html


# --- isolation between teams -------------------------------------------------------------


@pytest.fixture
def stranger_client(client, team):
    """A client signed in as the owner of another team, who is not in `team`."""
    stranger = member(TeamFactory(name="Team B", slug="team-b"), Role.OWNER)
    client.force_login(stranger)
    return client


@pytest.mark.parametrize(
    "name", ["teams:detail", "teams:members", "teams:settings", "teams:leave", "audit:activity"]
)
def test_a_member_of_another_team_gets_not_found_on_its_pages(stranger_client, team, name):
    response = stranger_client.get(reverse(name, args=[team.slug]))

    assert response.status_code == 404
    assert "Analytical Engines" not in page(response)
    assert "There is nothing here, or you do not have access to it." in page(response)


def test_a_member_of_another_team_cannot_change_anything_in_it(stranger_client, team, make_member):
    viewer = make_member(Role.VIEWER)
    target = Membership.objects.get(team=team, user=viewer)

    posts = [
        (reverse("teams:members", args=[team.slug]), {"email": "x@example.com", "role": "viewer"}),
        (reverse("teams:member_role", args=[team.slug, target.pk]), {"role": "owner"}),
        (reverse("teams:member_remove", args=[team.slug, target.pk]), {}),
        (reverse("teams:settings", args=[team.slug]), {"name": "Hijacked"}),
        (reverse("teams:leave", args=[team.slug]), {}),
    ]
    for url, data in posts:
        assert stranger_client.post(url, data).status_code == 404, url

    target.refresh_from_db()
    team.refresh_from_db()
    assert (target.role, team.name) == (Role.VIEWER, "Analytical Engines")


def test_a_member_id_from_another_team_is_not_found(owner_client, team):
    other_membership = Membership.objects.create(
        team=TeamFactory(), user=UserFactory(), role=Role.VIEWER
    )

    response = owner_client.post(
        reverse("teams:member_remove", args=[team.slug, other_membership.pk])
    )

    assert response.status_code == 404
    assert Membership.objects.filter(pk=other_membership.pk).exists()


def test_an_unknown_team_is_not_found(owner_client):
    assert owner_client.get(reverse("teams:detail", args=["no-such-team"])).status_code == 404


# --- settings ----------------------------------------------------------------------------


def test_an_owner_renames_the_team(owner_client, team):
    response = owner_client.post(
        reverse("teams:settings", args=[team.slug]), {"name": "Engines Ltd"}, follow=True
    )

    team.refresh_from_db()
    assert team.name == "Engines Ltd"
    assert "Team settings saved." in page(response)


def test_renaming_to_an_overlong_name_shows_the_error(owner_client, team):
    response = owner_client.post(reverse("teams:settings", args=[team.slug]), {"name": "x" * 101})

    assert response.status_code == 400
    assert "Ensure this value has at most 100 characters" in page(response)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_open_the_settings(client, team, make_member, role):
    client.force_login(make_member(role))

    assert client.get(reverse("teams:settings", args=[team.slug])).status_code == 403
    assert (
        client.post(reverse("teams:settings", args=[team.slug]), {"name": "X"}).status_code == 403
    )
    team.refresh_from_db()
    assert team.name == "Analytical Engines"


# --- leave -----------------------------------------------------------------------------------


def test_a_viewer_leaves_after_confirming(client, team, make_member):
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)
    leave_url = reverse("teams:leave", args=[team.slug])

    assert "Leave team</button>" in page(client.get(leave_url))
    response = client.post(leave_url, follow=True)

    assert response.redirect_chain[-1][0] == reverse("teams:list")
    assert "You left Analytical Engines." in page(response)
    assert not Membership.objects.filter(team=team, user=viewer).exists()


def test_the_last_owner_trying_to_leave_sees_why_not(owner_client, team, user):
    response = owner_client.post(reverse("teams:leave", args=[team.slug]))

    assert response.status_code == 409
    assert "You are the last owner of this team." in page(response)
    assert Membership.objects.filter(team=team, user=user).exists()


def test_the_overview_counts_members_by_role_in_a_plain_sentence(owner_client, team, make_member):
    make_member(Role.ADMIN)
    make_member(Role.ADMIN)

    html = " ".join(page(owner_client.get(reverse("teams:detail", args=[team.slug]))).split())

    # No trailing comma for the roles nobody has.
    assert "<strong>3</strong> members: 1 owner, 2 admins</p>" in html


def test_account_pages_keep_the_last_team_in_the_navigation(owner_client, team):
    assert "<summary>Teams</summary>" in page(owner_client.get("/account/profile/"))

    owner_client.get(reverse("teams:detail", args=[team.slug]))
    html = page(owner_client.get("/account/profile/"))

    assert "<summary><bdi>Analytical Engines</bdi></summary>" in html
    assert f'href="{reverse("servers:list", args=[team.slug])}"' in html

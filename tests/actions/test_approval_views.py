"""The approval pages: the run page's Approval card, the Approve and Deny buttons,
the refusal a requester sees, and the team's Approvals page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipetower.actions import approvals, services
from pipetower.actions.models import ApprovalRequest, RunStatus
from pipetower.teams.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(make_action, admin, web1):
    action = make_action(
        "echo deploying",
        name="Deploy",
        requires_approval=True,
        parameters=[{"name": "version", "kind": "string"}],
    )
    return services.run_start(
        action=action, actor=admin, server_ids=[web1.pk], values={"version": "1.2"}
    )


def run_page(client, team, run):
    return client.get(reverse("runs:detail", args=[team.slug, run.pk]))


def test_the_run_page_shows_who_asked_the_script_targets_and_parameters(
    owner_client, team, waiting
):
    page = run_page(owner_client, team, waiting).content.decode()
    assert "Waiting for approval" in page
    assert 'id="approval"' in page
    assert "Bea Admin" in page
    assert "echo deploying" in page and "web-1" in page and "version=1.2" in page
    assert 'id="approve-run"' in page and 'id="deny-run"' in page


def test_a_waiting_run_is_not_said_to_be_running(owner_client, team, waiting):
    """The summary line counts the time as waiting, and the live answer names the
    status as people read it (the page's badge shows that label)."""
    response = run_page(owner_client, team, waiting)
    assert response.context["live"]["status"] == "pending_approval"
    live = owner_client.get(reverse("runs:live", args=[team.slug, waiting.pk]), {"rev": 0})
    assert live.json()["run"] == {
        "status": "pending_approval",
        "status_label": "Waiting for approval",
        "finished": False,
    }


def test_the_requester_sees_why_they_cannot_approve_and_no_buttons(client, team, waiting, admin):
    client.force_login(admin)
    page = run_page(client, team, waiting).content.decode()
    assert 'id="approve-run"' not in page
    assert "You asked for this run; another admin or owner must approve it." in page


def test_a_requester_who_posts_anyway_is_told_why_and_nothing_starts(client, team, waiting, admin):
    client.force_login(admin)
    answer = client.post(reverse("runs:approve", args=[team.slug, waiting.pk]), follow=True)
    assert answer.status_code == 200
    assert "You asked for this run; another admin or owner must approve it." in (
        answer.content.decode()
    )
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.PENDING_APPROVAL


def test_another_admin_approves_from_the_run_page(owner_client, team, waiting):
    answer = owner_client.post(reverse("runs:approve", args=[team.slug, waiting.pk]), follow=True)
    assert "Approved: the run is queued" in answer.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.QUEUED


def test_deny_with_a_reason_from_the_run_page(owner_client, team, waiting):
    answer = owner_client.post(
        reverse("runs:deny", args=[team.slug, waiting.pk]),
        {"reason": "Not on a Friday"},
        follow=True,
    )
    page = answer.content.decode()
    assert "Denied: the run will not start." in page
    assert "Not on a Friday" in page
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.CANCELLED


def test_a_viewer_sees_no_buttons_and_cannot_approve(client, team, waiting, make_member):
    viewer = make_member(Role.VIEWER)
    client.force_login(viewer)
    assert 'id="approve-run"' not in run_page(client, team, waiting).content.decode()
    answer = client.post(reverse("runs:approve", args=[team.slug, waiting.pk]))
    assert answer.status_code == 403
    assert ApprovalRequest.objects.get(run=waiting).is_waiting


def test_the_approvals_page_lists_waiting_requests_first_with_a_nav_count(
    owner_client, team, waiting, make_action, admin, web1, user
):
    other = make_action("true", name="Other", requires_approval=True)
    decided = services.run_start(action=other, actor=admin, server_ids=[web1.pk])
    approvals.approval_deny(run=decided, actor=user, reason="no")
    page = owner_client.get(reverse("approvals:list", args=[team.slug])).content.decode()
    assert page.index(f"approval-{waiting.approval.pk}") < page.index(
        f"approval-{decided.approval.pk}"
    )
    assert 'aria-label="1 waiting"' in page


def test_the_approvals_filter_in_use_is_marked(owner_client, team, waiting):
    page = owner_client.get(
        reverse("approvals:list", args=[team.slug]), {"state": "waiting"}
    ).content.decode()
    assert '<a class="button secondary" aria-current="page" href="?state=waiting">' in page
    assert page.count('aria-current="page" href="?') == 1


def test_the_approvals_page_has_an_empty_state(owner_client, team):
    page = owner_client.get(reverse("approvals:list", args=[team.slug])).content.decode()
    assert "No approval requests yet" in page


def test_the_action_form_turns_approval_on(owner_client, team, make_action):
    action = make_action("true", name="Gate me")
    page = owner_client.get(reverse("actions:edit", args=[team.slug, action.pk]))
    assert "Requires approval" in page.content.decode()
    action_page = owner_client.get(reverse("actions:detail", args=[team.slug, action.pk]))
    assert 'id="action-requires-approval">no' in action_page.content.decode()


def test_the_team_overview_says_how_many_runs_wait_for_approval(owner_client, team, waiting):
    page = owner_client.get(reverse("teams:detail", args=[team.slug])).content.decode()
    assert "1 run waiting for approval" in page


def test_the_run_form_says_the_run_will_wait_for_approval(owner_client, team, make_action):
    action = make_action("true", name="Gated", requires_approval=True)
    page = owner_client.get(reverse("actions:run", args=[team.slug, action.pk]))
    assert "This action requires approval" in page.content.decode()

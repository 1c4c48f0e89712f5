from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import Run, RunStatus
from pipetower.core.errors import Conflict
from pipetower.core.models import DataKey
from pipetower.privacy import deletion
from pipetower.privacy.holds import legal_hold_lift, legal_hold_place
from pipetower.privacy.models import AccountDeletion, DeletionReport
from pipetower.servers.models import Server
from pipetower.teams.models import Role, Team
from tests.accounts.mfa.helpers import reauthenticate
from tests.factories import PASSWORD
from tests.privacy.helpers import populate

pytestmark = pytest.mark.django_db


def _reauthenticated(client: Client) -> None:
    reauthenticate(client)


def test_deletion_page_asks_to_reauthenticate_first(owner_client: Client) -> None:
    answer = owner_client.post(reverse("privacy:deletion"), {"confirm": "ada@example.com"})
    assert answer.status_code == 302
    assert "reauthenticate" in answer["Location"]
    assert not AccountDeletion.objects.exists()


def test_deletion_is_scheduled_after_the_grace_period_and_signs_out(
    owner_client: Client,
    user: User,
    settings,
    mailoutbox,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    settings.DELETION_GRACE_DAYS = 14
    _reauthenticated(owner_client)
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_client.post(reverse("privacy:deletion"), {"confirm": "ada@example.com"})
    assert answer.status_code == 302
    deletion_row = AccountDeletion.objects.get(user=user)
    assert deletion_row.scheduled_for - deletion_row.requested_at == timedelta(days=14)
    assert SESSION_KEY not in owner_client.session
    assert "will be deleted" in mailoutbox[-1].subject


def test_a_wrong_confirmation_is_shown_next_to_the_field(owner_client: Client) -> None:
    _reauthenticated(owner_client)
    answer = owner_client.post(reverse("privacy:deletion"), {"confirm": "someone@else"})
    assert answer.status_code == 400
    assert b'aria-invalid="true"' in answer.content
    assert b"Type your email address exactly" in answer.content


def test_signing_in_cancels_the_deletion_and_says_so(client: Client, user: User) -> None:
    deletion.account_deletion_request(user=user)
    answer = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}, follow=True
    )
    assert b"deletion; that is cancelled" in answer.content
    assert AccountDeletion.objects.get().status == AccountDeletion.Status.CANCELLED


def test_owning_a_team_with_other_members_needs_a_transfer_first(
    user: User, team: Team, make_member
) -> None:  # type: ignore[no-untyped-def]
    make_member(Role.ADMIN)
    with pytest.raises(Conflict, match="Analytical Engines"):
        deletion.account_deletion_request(user=user)


def test_the_page_lists_the_teams_that_block_deletion(owner_client: Client, make_member) -> None:  # type: ignore[no-untyped-def]
    make_member(Role.VIEWER)
    _reauthenticated(owner_client)
    page = owner_client.get(reverse("privacy:deletion"))
    assert b"cannot be deleted yet" in page.content
    assert b"Analytical Engines" in page.content
    # No active red button while deletion is blocked: the form is there, disabled.
    html = page.content.decode()
    assert "button danger" not in html
    assert '<fieldset class="plain" disabled' in html
    assert '<button type="submit" class="button" disabled>Delete my account</button>' in html


def test_without_blockers_the_delete_button_is_active(owner_client: Client) -> None:
    _reauthenticated(owner_client)
    html = owner_client.get(reverse("privacy:deletion")).content.decode()
    assert "cannot be deleted yet" not in html
    assert '<fieldset class="plain">' in html
    assert 'class="button danger">Delete my account</button>' in html


def test_a_run_in_progress_refuses_the_deletion(user: User, team: Team) -> None:
    populate(user, team)
    Run.objects.update(status=RunStatus.RUNNING)
    with pytest.raises(Conflict, match="Runs are still in progress"):
        deletion.account_deletion_request(user=user)


def test_purge_waits_for_a_run_that_started_during_the_grace_period(user: User, team: Team) -> None:
    populate(user, team)
    scheduled = deletion.account_deletion_request(user=user)
    Run.objects.update(status=RunStatus.RUNNING)
    later = scheduled.scheduled_for + timedelta(minutes=1)
    assert deletion.account_deletions_purge(now=later) == 0
    Run.objects.update(status=RunStatus.SUCCEEDED)
    assert deletion.account_deletions_purge(now=later) == 1


def test_purge_before_the_grace_period_ends_does_nothing(user: User) -> None:
    scheduled = deletion.account_deletion_request(user=user)
    assert deletion.account_deletions_purge(now=scheduled.scheduled_for - timedelta(hours=1)) == 0
    assert User.objects.filter(pk=user.pk).exists()


def test_purge_erases_the_account_its_solo_team_and_its_data_key(
    user: User,
    team: Team,
    mailoutbox,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    populate(user, team)
    user_key = user.encryption_key()
    team_key = Team.objects.get(pk=team.pk).data_key
    scheduled = deletion.account_deletion_request(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        deletion.account_deletions_purge(now=scheduled.scheduled_for)
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Server.objects.exists()
    assert DataKey.objects.get(pk=user_key.pk).destroyed_at is not None
    if team_key:
        assert DataKey.objects.get(pk=team_key.pk).destroyed_at is not None
    done = AccountDeletion.objects.get(pk=scheduled.pk)
    assert done.status == AccountDeletion.Status.COMPLETED and done.user is None
    report = DeletionReport.objects.get(pk=done.report_id)
    assert report.data_key_destroyed
    assert "ada" not in str(report.categories).lower() + str(report.kept).lower()
    assert "has been deleted" in mailoutbox[-1].subject
    assert mailoutbox[-1].to == ["ada@example.com"]


def test_sign_in_fails_after_the_purge(client: Client, user: User) -> None:
    scheduled = deletion.account_deletion_request(user=user)
    deletion.account_deletions_purge(now=scheduled.scheduled_for)
    answer = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert answer.status_code == 200
    assert SESSION_KEY not in client.session


def test_a_legal_hold_keeps_its_records_until_lifted(user: User) -> None:
    SignInEvent.objects.create(user=user, method="password", outcome="success", ip="198.51.100.4")
    hold = legal_hold_place(user=user, reason="Court order 12/2026", scope=["accounts.SignInEvent"])
    scheduled = deletion.account_deletion_request(user=user)
    deletion.account_deletions_purge(now=scheduled.scheduled_for)
    assert SignInEvent.objects.filter(ip="198.51.100.4").exists()
    kept = User.objects.get(pk=user.pk)
    assert not kept.is_active and not kept.has_usable_password()
    report = AccountDeletion.objects.get(pk=scheduled.pk).report
    assert report is not None
    assert {"model": "accounts.SignInEvent", "reason": "Court order 12/2026"} in report.kept

    legal_hold_lift(hold=hold)

    assert not SignInEvent.objects.exists()
    assert not User.objects.filter(pk=user.pk).exists()


def test_with_two_factor_on_deleting_also_needs_a_current_code(client: Client, user: User) -> None:
    from tests.accounts.mfa.helpers import fresh_period, give_totp, totp_code

    secret = give_totp(user)
    client.force_login(user)
    _reauthenticated(client)  # with the password: the code below is still unused
    page = client.get(reverse("privacy:deletion"))
    assert b'name="code"' in page.content

    wrong = client.post(reverse("privacy:deletion"), {"confirm": user.email, "code": "000000"})
    assert wrong.status_code == 400
    assert b'aria-describedby="code-error"' in wrong.content
    assert b"That code is not correct" in wrong.content
    assert not AccountDeletion.objects.exists()

    fresh_period()
    right = client.post(
        reverse("privacy:deletion"), {"confirm": user.email, "code": totp_code(secret)}
    )
    assert right.status_code == 302
    assert AccountDeletion.objects.filter(user=user).exists()


def test_the_page_explains_that_shared_team_content_stays_with_a_former_member(
    owner_client: Client,
) -> None:
    _reauthenticated(owner_client)
    html = owner_client.get(reverse("privacy:deletion")).content.decode()
    assert "belongs to that team" in html
    assert "“a former member”" in html
    assert "signed out everywhere" in html

"""Erasure covers every identifier the person ever had, and signs them out during the grace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.utils import timezone

from pipetower.accounts.services import user_update_profile
from pipetower.api.errors import Unauthenticated
from pipetower.api.services import api_token_authenticate, api_token_create
from pipetower.audit.models import AuditEvent
from pipetower.audit.services import audit_record
from pipetower.privacy import deletion
from pipetower.servers.models import Server
from pipetower.teams.models import Invitation, Membership, Role
from tests.factories import PASSWORD, TeamFactory, UserFactory
from tests.privacy.residue import scan_database

pytestmark = pytest.mark.django_db(transaction=True)

FORMER_EMAIL = "Former.Marker-7Q@example.com"
FORMER_NAME = "Formername Zebulon-Marker"
TOKEN_LABEL = "Zebulon's laptop marker"


def test_former_names_and_addresses_are_erased_everywhere() -> None:
    ada = UserFactory(email=FORMER_EMAIL, name=FORMER_NAME)
    bob = UserFactory(email="bob.stays@example.com", name="Bob Stays")
    staff = UserFactory(email="staff.stays@example.com", name="Staff", is_staff=True)
    shared = TeamFactory(name="Bob's ops", slug="bobs-ops")
    Membership.objects.create(team=shared, user=bob, role=Role.OWNER)
    # History written while Ada had her former name and address.
    Invitation.objects.create(
        team=shared,
        email=FORMER_EMAIL,
        role=Role.OPERATOR,
        token_hash="f" * 64,
        invited_by=bob,
        expires_at=timezone.now() + timedelta(days=7),
        accepted_at=timezone.now(),
        accepted_by=ada,
    )
    Membership.objects.create(team=shared, user=ada, role=Role.OPERATOR)
    audit_record(
        actor=bob, verb="member.added", team=shared, target=ada, data={"email": FORMER_EMAIL}
    )
    server = Server.objects.create(
        team=shared, name="db-1", host="db.example.net", username="root", created_by=ada
    )
    audit_record(actor=ada, verb="server.created", team=shared, target=server)
    api_token_create(user=ada, name=TOKEN_LABEL, scope="read")
    LogEntry.objects.log_actions(
        user_id=staff.pk,
        queryset=[ada],
        action_flag=CHANGE,
        change_message=f"Checked {FORMER_EMAIL} for {FORMER_NAME}",
        single_object=True,
    )
    # Then she changes her name and address.
    user_update_profile(user=ada, name="Current Name")
    ada.email = "current.ada@example.com"
    ada.save(update_fields=["email"])
    markers = [FORMER_EMAIL, FORMER_NAME, TOKEN_LABEL, "current.ada@example.com"]
    assert scan_database(markers)  # the history does hold them before the purge

    scheduled = deletion.account_deletion_request(user=ada)
    assert deletion.account_deletions_purge(now=scheduled.scheduled_for) == 1

    assert scan_database(markers) == []
    # The team keeps its server and its history, attributed to a former member.
    assert Server.objects.filter(pk=server.pk, team=shared, created_by=None).exists()
    event = AuditEvent.objects.get(verb="server.created")
    assert event.actor_label == deletion.FORMER_MEMBER
    assert AuditEvent.objects.filter(verb="member.added", actor_label=bob.email).exists()
    assert LogEntry.objects.filter(user=staff).exists()


def test_scheduling_the_deletion_signs_out_other_sessions_and_revokes_tokens() -> None:
    ada = UserFactory(email="ada.grace@example.com", name="Ada Grace")
    _, raw = api_token_create(user=ada, name="ci", scope="read")
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        assert browser.login(email=ada.email, password=PASSWORD)
    assert phone.get("/account/profile/").status_code == 200

    deletion.account_deletion_request(user=ada)

    answer = phone.get("/account/profile/")
    assert answer.status_code == 302 and "login" in answer["Location"]
    with pytest.raises(Unauthenticated, match="revoked"):
        api_token_authenticate(raw_token=raw, ip="127.0.0.1")
    event = AuditEvent.objects.get(verb="privacy.deletion_signed_out")
    assert event.data == {"sessions_ended": 2, "api_tokens_revoked": 1}


def test_scrubbing_replaces_whole_words_only() -> None:
    assert deletion._scrub("Al reran Alerts for al", ["Al"]) == (
        f"{deletion.ERASED} reran Alerts for {deletion.ERASED}"
    )

"""After deletion, nothing of the person is left outside held records."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from pipetower.accounts.models import User
from pipetower.actions.models import Run
from pipetower.audit.services import audit_record
from pipetower.privacy import deletion, export
from pipetower.privacy.models import SubprocessorSubscriber
from pipetower.servers.models import Server
from pipetower.teams.models import Membership, Role
from tests.factories import TeamFactory, UserFactory
from tests.privacy.helpers import populate
from tests.privacy.residue import scan_cache, scan_database, scan_files

pytestmark = pytest.mark.django_db(transaction=True)


def test_nothing_of_the_person_remains_and_shared_data_is_intact() -> None:
    ada = UserFactory(email="ada.residue@example.com", name="Ada Residue-Lovelace")
    ada.signup_ip = "192.0.2.55"
    ada.avatar.save("me.webp", ContentFile(b"RIFF-avatar-bytes"), save=True)
    own = TeamFactory(name="Ada solo", slug="ada-solo")
    Membership.objects.create(team=own, user=ada, role=Role.OWNER)
    populate(ada, own)
    # A team both belong to, owned by the other member.
    bob = UserFactory(email="bob.keeps@example.com", name="Bob Keeps")
    shared = TeamFactory(name="Shared ops", slug="shared-ops")
    Membership.objects.create(team=shared, user=bob, role=Role.OWNER)
    Membership.objects.create(team=shared, user=ada, role=Role.OPERATOR)
    bob_server = Server.objects.create(
        team=shared, name="db-1", host="db.example.net", username="root", created_by=ada
    )
    Run.objects.create(
        team=shared,
        action_name="Backup",
        script="true",
        timeout_seconds=5,
        concurrency=1,
        status="succeeded",
        started_by=ada,
    )
    audit_record(
        actor=ada,
        verb="server.created",
        team=shared,
        target=bob_server,
        ip="192.0.2.56",
        data={"by": ada.email},
    )
    audit_record(actor=bob, verb="member.added", team=shared, target=ada, data={"email": ada.email})
    ada.encryption_key()
    # Following the subprocessor list, found by address rather than by account.
    SubprocessorSubscriber.objects.create(email=ada.email)
    export.export_request(user=ada)
    cache.set("greeting", f"hello {ada.email}")
    cache.delete("greeting")

    scheduled = deletion.account_deletion_request(user=ada)
    assert deletion.account_deletions_purge(now=scheduled.scheduled_for) == 1

    needles = [
        "ada.residue@example.com",
        "Ada Residue-Lovelace",
        "192.0.2.55",
        "192.0.2.56",
        "203.0.113.77",
    ]
    assert scan_database(needles) == []
    assert scan_files([*needles, "RIFF-avatar-bytes"]) == []
    assert scan_cache(needles) == []
    assert not User.objects.filter(email="ada.residue@example.com").exists()
    # Bob's team, server and the shared run history are intact.
    assert Server.objects.filter(pk=bob_server.pk, team=shared).exists()
    assert Membership.objects.filter(team=shared, user=bob, role=Role.OWNER).exists()
    assert Run.objects.filter(team=shared, action_name="Backup", started_by=None).exists()


def test_the_scanner_finds_a_planted_value() -> None:
    UserFactory(email="planted@example.com")
    assert any("accounts_user.email" in hit for hit in scan_database(["planted@example.com"]))


def test_the_cache_scanner_finds_a_planted_value_in_the_configured_cache() -> None:
    cache.set("residue-probe", {"note": "hello planted.cache@example.com"})
    try:
        assert any("residue-probe" in hit for hit in scan_cache(["planted.cache@example.com"]))
    finally:
        cache.delete("residue-probe")
    assert scan_cache(["planted.cache@example.com"]) == []

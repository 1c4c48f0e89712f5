"""Personal API tokens: created once, stored as a hash, refused when unusable."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from pipetower.api.errors import Unauthenticated
from pipetower.api.models import ApiToken
from pipetower.api.services import (
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import NotAllowed, ServiceError
from tests.factories import UserFactory


def test_create_returns_the_plaintext_once_and_stores_only_its_hash(user):
    token, raw = api_token_create(user=user, name="deploy script", scope="write")

    match = re.fullmatch(r"ptk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", raw)
    assert match, raw
    assert token.prefix == match.group(1)
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = ApiToken.objects.values().get(pk=token.pk)
    assert match.group(2) not in str(stored)
    assert token.scope == "write" and token.state == "active"


def test_every_token_is_different(user):
    raws = {api_token_create(user=user, name=f"t{i}", scope="read")[1] for i in range(20)}
    assert len(raws) == 20


def test_create_is_audited_without_the_secret(user, rf):
    request = rf.post("/", REMOTE_ADDR="203.0.113.9")
    token, raw = api_token_create(user=user, name="ci", scope="read", request=request)

    event = AuditEvent.objects.get(verb="api_token.created")
    assert event.team is None
    assert event.actor == user
    assert event.target_id == str(token.pk)
    assert event.ip == "203.0.113.9"
    assert event.data["scope"] == "read" and event.data["prefix"] == token.prefix
    assert raw.rsplit("_", 1)[-1] not in str(event.data)


@pytest.mark.parametrize(
    ("name", "scope", "days", "field"),
    [
        ("   ", "read", None, "name"),
        ("x" * 101, "read", None, "name"),
        ("ok", "admin", None, "scope"),
        ("ok", "read", -1, "expires_at"),
    ],
)
def test_create_refuses_bad_input_with_a_message_for_the_field(user, name, scope, days, field):
    expires_at = timezone.now() + timedelta(days=days) if days else None
    with pytest.raises(ServiceError) as caught:
        api_token_create(user=user, name=name, scope=scope, expires_at=expires_at)
    assert caught.value.field == field
    assert ApiToken.objects.count() == 0


def test_revoke_stops_the_token_and_is_audited_once(user):
    token, raw = api_token_create(user=user, name="old", scope="read")

    api_token_revoke(token=token, actor=user)
    api_token_revoke(token=token, actor=user)

    token.refresh_from_db()
    assert token.state == "revoked"
    assert AuditEvent.objects.filter(verb="api_token.revoked", team=None).count() == 1
    with pytest.raises(Unauthenticated) as caught:
        api_token_authenticate(raw_token=raw, ip=None)
    assert caught.value.code == "token_revoked"


def test_nobody_else_can_revoke_a_token_but_staff_can(user):
    token, _ = api_token_create(user=user, name="mine", scope="read")
    with pytest.raises(NotAllowed):
        api_token_revoke(token=token, actor=UserFactory())
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None

    api_token_revoke(token=token, actor=UserFactory(is_staff=True))
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_authenticate_records_when_and_where_from(user):
    token, raw = api_token_create(user=user, name="ci", scope="read")

    found = api_token_authenticate(raw_token=raw, ip="198.51.100.7")

    assert found.pk == token.pk
    token.refresh_from_db()
    assert token.last_used_ip == "198.51.100.7"
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)


def test_authenticate_writes_last_use_at_most_once_a_minute(user, django_assert_num_queries):
    token, raw = api_token_create(user=user, name="ci", scope="read")
    api_token_authenticate(raw_token=raw, ip="198.51.100.7")
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at

    with django_assert_num_queries(1):  # the lookup only, no write
        api_token_authenticate(raw_token=raw, ip="198.51.100.8")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(minutes=2))
    api_token_authenticate(raw_token=raw, ip="198.51.100.8")
    token.refresh_from_db()
    assert token.last_used_ip == "198.51.100.8"
    assert token.last_used_at > first_use - timedelta(minutes=2)


@pytest.mark.parametrize(
    "raw",
    ["", "hello", "ptk_", "ptk_abc_def", "Bearer ptk_x", "ptk_" + "g" * 12 + "_" + "a" * 43],
)
def test_malformed_tokens_are_refused(db, raw):
    with pytest.raises(Unauthenticated) as caught:
        api_token_authenticate(raw_token=raw, ip=None)
    assert caught.value.code == "token_malformed"
    assert caught.value.status == 401


def test_unknown_token_and_wrong_secret_get_the_same_answer(user):
    _, raw = api_token_create(user=user, name="ci", scope="read")
    prefix = raw.split("_")[1]
    wrong_secret = f"ptk_{prefix}_{'A' * 43}"
    unknown = f"ptk_{'0' * 12}_{'A' * 43}"

    answers = []
    for candidate in (wrong_secret, unknown):
        with pytest.raises(Unauthenticated) as caught:
            api_token_authenticate(raw_token=candidate, ip=None)
        answers.append((caught.value.code, caught.value.message))
    assert answers[0] == answers[1] == ("token_invalid", "This API token is not valid.")


def test_expired_token_is_refused(user):
    token, raw = api_token_create(
        user=user, name="short", scope="read", expires_at=timezone.now() + timedelta(days=1)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(Unauthenticated) as caught:
        api_token_authenticate(raw_token=raw, ip=None)
    assert caught.value.code == "token_expired"
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None


def test_token_of_a_disabled_account_is_refused(user):
    _, raw = api_token_create(user=user, name="ci", scope="read")
    user.is_active = False
    user.save()

    with pytest.raises(Unauthenticated) as caught:
        api_token_authenticate(raw_token=raw, ip=None)
    assert caught.value.code == "account_disabled"


def test_a_token_made_with_an_expiring_token_cannot_outlive_it(user):
    parent_expiry = timezone.now() + timedelta(days=2)
    parent, _ = api_token_create(user=user, name="short", scope="write", expires_at=parent_expiry)

    with pytest.raises(NotAllowed) as caught:
        api_token_create(
            user=user,
            name="forever",
            scope="write",
            expires_at=parent_expiry + timedelta(days=1),
            via_token=parent,
        )
    assert caught.value.code == "expiry_too_late"

    child, _ = api_token_create(user=user, name="child", scope="read", via_token=parent)
    assert child.expires_at == parent_expiry
    event = AuditEvent.objects.filter(verb="api_token.created").latest("id")
    assert event.data["created_with"] == parent.prefix

"""Master keys, data keys, rotation and crypto-shredding, against the real database.

`settings.MASTER_KEYS` is what `PIPETOWER_MASTER_KEYS` becomes; each test sets
its own keys, and clears the per-process data-key cache whenever it changes them,
as a restarted process would start with an empty cache.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction

from pipetower.config.env import new_master_key
from pipetower.core import crypto
from pipetower.core.fields import encrypted_fields_rotate
from pipetower.core.models import DataKey
from pipetower.teams.models import Team
from tests.cryptotest.models import Keypair, Secret
from tests.cryptotest.raw import store, stored
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

OLD = new_master_key()
NEW = new_master_key()
VALUES = ["team one key", "team one password", "team two key"]


@pytest.fixture
def keys(settings):
    """Set the configured master keys, as a restart with a new environment would."""

    def configure(*master_keys: str) -> None:
        settings.MASTER_KEYS = list(master_keys)
        crypto.forget_cached_keys()

    configure(OLD)
    return configure


def reload(obj: Secret) -> Secret:
    crypto.forget_cached_keys()
    return Secret.objects.get(pk=obj.pk)


def wrapping_ids() -> set[str]:
    return set(
        DataKey.objects.filter(destroyed_at__isnull=True).values_list("master_key_id", flat=True)
    )


@pytest.fixture
def secrets(keys, team: Team) -> list[Secret]:
    """Values under two teams' data keys and one account's, all wrapped with OLD."""
    other = TeamFactory()
    made = [
        Secret.objects.create(team=team, name="deploy", value="team one key", note="n1"),
        Secret.objects.create(team=team, name="db", value="team one password"),
        Secret.objects.create(team=other, name="deploy", value="team two key"),
    ]
    Keypair.objects.create(owner=UserFactory(), private_key="account key")
    return made


def test_rotation_rewraps_every_data_key_under_the_new_master_key(keys, secrets) -> None:
    assert wrapping_ids() == {crypto.parse_master_key(OLD).key_id}
    keys(NEW, OLD)

    counts = encrypted_fields_rotate()

    assert counts["data keys"] == 3  # two teams and one account
    assert wrapping_ids() == {crypto.parse_master_key(NEW).key_id}
    assert [reload(s).value for s in secrets] == VALUES
    assert Keypair.objects.get().private_key == "account key"


def test_rotation_re_encrypts_every_value_with_fresh_ciphertext(keys, secrets) -> None:
    before = [stored(s, "value") for s in secrets]
    keys(NEW, OLD)

    counts = encrypted_fields_rotate()

    assert counts["cryptotest.Secret"] == 4  # three values and one note
    assert counts["cryptotest.Keypair"] == 1
    assert counts["unreadable values"] == 0
    after = [stored(s, "value") for s in secrets]
    assert all(a != b and a.startswith("pt2:") for a, b in zip(after, before, strict=True))
    assert reload(secrets[0]).note == "n1"


def test_after_rotation_the_old_master_key_can_be_removed(keys, secrets) -> None:
    keys(NEW, OLD)
    encrypted_fields_rotate()

    keys(NEW)

    assert crypto.master_keys_verify() == []
    assert [reload(s).value for s in secrets] == VALUES
    assert Keypair.objects.get().private_key == "account key"
    call_command("check", tags=["pipetower"])


def test_removing_the_old_master_key_before_rotating_is_reported_not_silently_broken(
    keys, secrets
) -> None:
    keys(NEW)

    problems = crypto.master_keys_verify()

    assert len(problems) == 1
    assert crypto.parse_master_key(OLD).key_id in problems[0]
    assert "not in PIPETOWER_MASTER_KEYS" in problems[0]
    with pytest.raises(crypto.DecryptionError, match="Add the old key back"):
        reload(secrets[0]).value


def test_rotation_with_the_old_key_missing_stops_with_a_clear_error(keys, secrets) -> None:
    keys(NEW)

    with pytest.raises(crypto.MasterKeyError, match="not in PIPETOWER_MASTER_KEYS"):
        encrypted_fields_rotate()

    keys(OLD)
    assert reload(secrets[0]).value == "team one key"


def test_rotation_leaves_unreadable_values_as_they_are_and_counts_them(keys, secrets) -> None:
    store(secrets[1], "value", "pt1:999999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    keys(NEW, OLD)

    counts = encrypted_fields_rotate()

    assert counts["unreadable values"] == 1
    assert stored(secrets[1], "value") == "pt1:999999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert reload(secrets[0]).value == "team one key"


def test_rotation_leaves_destroyed_data_keys_destroyed(keys, secrets, team: Team) -> None:
    crypto.data_key_destroy(data_key=team.encryption_key())
    keys(NEW, OLD)

    counts = encrypted_fields_rotate()

    destroyed = DataKey.objects.get(pk=team.data_key_id)
    assert destroyed.wrapped is None
    assert destroyed.destroyed_at is not None
    assert counts["data keys"] == 2
    assert counts["unreadable values"] == 3  # the team's two values and its note


def test_destroying_a_data_key_leaves_only_unreadable_ciphertext(keys, secrets, team: Team) -> None:
    raw_before = stored(secrets[0], "value")

    crypto.data_key_destroy(data_key=team.encryption_key())

    assert stored(secrets[0], "value") == raw_before  # the bytes stay; nothing opens them
    for secret in secrets[:2]:
        with pytest.raises(crypto.DecryptionError, match="destroyed"):
            reload(secret).value
    assert reload(secrets[2]).value == "team two key"  # another team's data is untouched
    assert DataKey.objects.get(pk=team.data_key_id).wrapped is None


def test_destroying_an_account_data_key_shreds_that_accounts_values(keys, secrets) -> None:
    keypair = Keypair.objects.get()

    crypto.data_key_destroy(data_key=keypair.owner.encryption_key())

    crypto.forget_cached_keys()
    with pytest.raises(crypto.DecryptionError, match="destroyed"):
        Keypair.objects.get().private_key


def backup(secret: Secret, data_key: DataKey) -> dict[str, object]:
    """What a database backup holds for one value: its ciphertext and its wrapped data key."""
    data_key.refresh_from_db()
    return {
        "value": stored(secret, "value"),
        "wrapped": bytes(data_key.wrapped),
        "master_key_id": data_key.master_key_id,
    }


def restore(secret: Secret, data_key: DataKey, saved: dict[str, object]) -> None:
    DataKey.objects.filter(pk=data_key.pk).update(
        wrapped=saved["wrapped"], master_key_id=saved["master_key_id"], destroyed_at=None
    )
    store(secret, "value", str(saved["value"]))


def test_a_backup_of_shredded_data_is_unreadable_once_the_old_master_key_is_retired(
    keys, secrets, team: Team
) -> None:
    data_key = team.encryption_key()
    old_backup = backup(secrets[0], data_key)
    keys(NEW, OLD)
    encrypted_fields_rotate()
    crypto.data_key_destroy(data_key=data_key)
    keys(NEW)

    restore(secrets[0], data_key, old_backup)

    with pytest.raises(crypto.DecryptionError, match="not in PIPETOWER_MASTER_KEYS"):
        reload(secrets[0]).value


def test_a_backup_stays_readable_while_the_master_key_that_wrapped_it_is_configured(
    keys, secrets, team: Team
) -> None:
    """The limit of crypto-shredding, and the reason the old key must be retired."""
    data_key = team.encryption_key()
    old_backup = backup(secrets[0], data_key)
    crypto.data_key_destroy(data_key=data_key)

    restore(secrets[0], data_key, old_backup)

    assert reload(secrets[0]).value == "team one key"


def test_a_wrong_master_key_is_reported_and_nothing_is_read_or_written(
    keys, secrets, team: Team
) -> None:
    raw_before = stored(secrets[0], "value")
    keys(NEW)  # as if PIPETOWER_MASTER_KEYS held another deployment's key

    assert any("wrong or missing" in p for p in crypto.master_keys_verify())
    with pytest.raises(crypto.DecryptionError):
        reload(secrets[0]).value
    fresh = Secret(team=Team.objects.get(pk=team.pk), name="new", value="another secret")
    with pytest.raises(crypto.MasterKeyError), transaction.atomic():
        fresh.save()
    assert not Secret.objects.filter(name="new").exists()
    assert stored(secrets[0], "value") == raw_before


def test_a_wrong_master_key_fails_the_system_check_with_the_reason(keys, secrets) -> None:
    keys(NEW)

    with pytest.raises(SystemCheckError) as failure:
        call_command("check")

    message = str(failure.value)
    assert "pipetower.E001" in message
    assert crypto.parse_master_key(OLD).key_id in message
    assert "wrong or missing" in message


def test_no_master_key_fails_the_system_check_with_the_reason(keys, secrets) -> None:
    keys()

    assert crypto.master_keys_verify() == [
        "No master key is configured: set PIPETOWER_MASTER_KEYS."
    ]
    with pytest.raises(SystemCheckError, match="No master key is configured"):
        call_command("check")


def test_an_altered_wrapped_data_key_is_reported(keys, secrets, team: Team) -> None:
    data_key = team.encryption_key()
    altered = bytearray(DataKey.objects.get(pk=data_key.pk).wrapped)
    altered[-1] ^= 0x01
    DataKey.objects.filter(pk=data_key.pk).update(wrapped=bytes(altered))
    DataKey.objects.exclude(pk=data_key.pk).delete()  # so the check samples this one

    problems = crypto.master_keys_verify()

    assert len(problems) == 1
    assert "has been altered" in problems[0]
    with pytest.raises(crypto.DecryptionError, match="has been altered"):
        reload(secrets[0]).value


def test_a_good_configuration_passes_the_check(keys, secrets) -> None:
    assert crypto.master_keys_verify() == []
    call_command("check", tags=["pipetower"])


@pytest.mark.parametrize(
    ("configured", "position"),
    [
        (["not a key at all"], 1),
        (["c2hvcnQ="], 1),  # valid base64, 5 bytes
        ([OLD, OLD[:-8]], 2),  # truncated when pasted
        ([OLD, OLD + OLD], 2),  # two keys with the comma lost
        ([OLD[:20] + "*" + OLD[21:]], 1),  # a character that is not base64
    ],
    ids=["text", "short", "truncated", "joined", "bad-character"],
)
def test_a_malformed_master_key_gives_a_clear_error_that_never_echoes_it(
    settings, configured: list[str], position: int
) -> None:
    settings.MASTER_KEYS = configured

    with pytest.raises(crypto.MasterKeyError) as failure:
        crypto.keyring()

    message = str(failure.value)
    assert f"Master key number {position} in PIPETOWER_MASTER_KEYS is not a valid key" in message
    assert "`pipetower keygen`" in message
    assert all(text not in message for text in configured)
    assert crypto.master_keys_verify() == [message]


def test_master_keys_may_be_padded_or_not_and_come_as_one_string(settings) -> None:
    unpadded = OLD.rstrip("=")
    settings.MASTER_KEYS = f" {NEW} ,{unpadded}"

    ring = crypto.keyring()

    assert [key.key_id for key in ring] == [
        crypto.parse_master_key(NEW).key_id,
        crypto.parse_master_key(OLD).key_id,
    ]
    assert ring[1].material == crypto.parse_master_key(OLD).material


def test_new_data_keys_are_wrapped_with_the_first_master_key(keys, db: None) -> None:
    keys(NEW, OLD)

    data_key = crypto.data_key_create(purpose=DataKey.Purpose.TEST)

    assert data_key.master_key_id == crypto.parse_master_key(NEW).key_id
    assert OLD not in repr(bytes(data_key.wrapped))

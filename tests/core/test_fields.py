"""EncryptedTextField: what reaches the database, and what comes back out of it.

Every test reads or writes the stored column with raw SQL, under the ORM, so
what is checked is the bytes at rest, not what the field says about itself.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import transaction

from pipetower.core import crypto
from pipetower.core.fields import Ciphertext, EncryptedTextField, encrypted_fields
from pipetower.teams.models import Team
from tests.cryptotest.models import Keypair, PrivateKeyField, Secret, SecretAlias
from tests.cryptotest.raw import store, stored
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PLAINTEXT = "-----BEGIN OPENSSH PRIVATE KEY----- hunter2 ünïcødé 🔑"


@pytest.fixture
def other_team() -> Team:
    return TeamFactory(name="Difference Engines", slug="difference")


def fresh(obj: Secret) -> Secret:
    """The row as a new request would load it."""
    crypto.forget_cached_keys()
    return Secret.objects.get(pk=obj.pk)


def test_stored_column_holds_versioned_ciphertext_never_the_plaintext(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="deploy key", value=PLAINTEXT, note="hunter2")

    for field in ("value", "note"):
        raw = stored(secret, field)
        assert raw is not None
        assert raw.startswith("pt2:")
        assert "hunter2" not in raw
        assert PLAINTEXT not in raw
    assert stored(secret, "name") == "deploy key"


def test_value_round_trips_through_the_database(team: Team) -> None:
    long_text = "line\n" * 20_000
    secret = Secret.objects.create(team=team, name="k", value=PLAINTEXT, note=long_text)

    loaded = fresh(secret)

    assert loaded.value == PLAINTEXT
    assert loaded.note == long_text


def test_empty_value_is_stored_empty_and_needs_no_key(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="k", value="x", note="")

    assert stored(secret, "note") == ""
    assert fresh(secret).note == ""


def test_saving_the_same_value_twice_gives_different_ciphertext(team: Team) -> None:
    first = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    second = Secret.objects.create(team=team, name="b", value=PLAINTEXT)
    before = stored(first, "value")

    first.save()

    assert stored(first, "value") != before
    assert stored(first, "value") != stored(second, "value")
    assert fresh(first).value == fresh(second).value == PLAINTEXT


def test_saving_an_unread_value_writes_the_same_ciphertext_back(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    before = stored(secret, "value")

    loaded = fresh(secret)
    loaded.name = "renamed"
    loaded.save()

    assert stored(secret, "value") == before
    assert fresh(secret).value == PLAINTEXT


def test_value_copied_into_another_column_does_not_decrypt(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT, note="harmless")
    store(secret, "note", stored(secret, "value"))

    loaded = fresh(secret)

    with pytest.raises(crypto.DecryptionError, match=r"cryptotest\.secret\.note"):
        loaded.note
    assert loaded.value == PLAINTEXT


def test_value_copied_into_a_row_of_another_team_does_not_decrypt(
    team: Team, other_team: Team
) -> None:
    ours = Secret.objects.create(team=team, name="ours", value=PLAINTEXT)
    theirs = Secret.objects.create(team=other_team, name="theirs", value="their own")
    store(theirs, "value", stored(ours, "value"))

    with pytest.raises(crypto.DecryptionError, match="different owner"):
        fresh(theirs).value


def test_value_copied_into_a_row_of_another_account_does_not_decrypt(db: None) -> None:
    ada, bob = UserFactory(), UserFactory()
    ours = Keypair.objects.create(owner=ada, private_key=PLAINTEXT)
    theirs = Keypair.objects.create(owner=bob, private_key="bob's key")
    store(theirs, "private_key", stored(ours, "private_key"))

    crypto.forget_cached_keys()
    with pytest.raises(crypto.DecryptionError, match="different owner"):
        Keypair.objects.get(pk=theirs.pk).private_key
    assert Keypair.objects.get(pk=ours.pk).private_key == PLAINTEXT


def test_a_copied_value_is_not_re_encrypted_for_its_new_owner_on_save(
    team: Team, other_team: Team
) -> None:
    ours = Secret.objects.create(team=team, name="ours", value=PLAINTEXT)
    theirs = Secret.objects.create(team=other_team, name="theirs", value="their own")
    store(theirs, "value", stored(ours, "value"))

    loaded = fresh(theirs)
    loaded.name = "an innocent rename"
    with pytest.raises(crypto.DecryptionError, match="different owner"), transaction.atomic():
        loaded.save()

    assert stored(theirs, "name") == "theirs"


def test_moving_a_row_to_another_team_re_encrypts_a_value_read_before_the_move(
    team: Team, other_team: Team
) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)

    loaded = fresh(secret)
    assert loaded.value == PLAINTEXT
    loaded.team = other_team
    loaded.save()

    moved = fresh(secret)
    assert moved.team == other_team
    assert moved.value == PLAINTEXT
    assert stored(secret, "value").startswith(f"pt2:{other_team.encryption_key().pk}:")


def test_moving_a_row_without_reading_its_value_is_refused(team: Team, other_team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)

    loaded = fresh(secret)
    loaded.team = other_team
    with pytest.raises(crypto.DecryptionError, match="read it before moving"), transaction.atomic():
        loaded.save()
    assert fresh(secret).team == team


def flip_last_byte(token: str) -> str:
    version, key_id, payload = token.split(":", 2)
    blob = bytearray(base64.urlsafe_b64decode(payload))
    blob[-1] ^= 0x01
    return f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(blob)).decode()}"


def flip_first_ciphertext_byte(token: str) -> str:
    version, key_id, payload = token.split(":", 2)
    blob = bytearray(base64.urlsafe_b64decode(payload))
    blob[12] ^= 0x80
    return f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(blob)).decode()}"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (flip_last_byte, "integrity check"),
        (flip_first_ciphertext_byte, "integrity check"),
        (lambda t: t[: len("pt2:1:") + 8], "not Pipetower ciphertext|too short"),
        (lambda t: t.replace("pt2:", "pt9:", 1), "not Pipetower ciphertext"),
        (lambda t: t[:-4] + "!!!!", "not Pipetower ciphertext"),
        (lambda t: t[:10] + " " + t[10:], "not Pipetower ciphertext"),
        (lambda t: "hunter2", "not Pipetower ciphertext"),
        (lambda t: t.replace("pt2:", "pt2:²", 1), "not Pipetower ciphertext"),
    ],
    ids=["tag", "ciphertext", "truncated", "version", "junk", "whitespace", "plaintext", "key-id"],
)
def test_tampered_ciphertext_is_detected(team: Team, tamper, message: str) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    store(secret, "value", tamper(stored(secret, "value")))

    with pytest.raises(crypto.DecryptionError, match=message):
        fresh(secret).value


def test_a_value_pointing_at_another_data_key_is_refused(team: Team, other_team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    _, _, payload = stored(secret, "value").split(":", 2)
    store(secret, "value", f"pt1:{other_team.encryption_key().pk}:{payload}")

    with pytest.raises(crypto.DecryptionError, match="different owner"):
        fresh(secret).value


def test_a_row_with_an_unreadable_value_still_loads_and_fails_only_when_read(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT, note="fine")
    store(secret, "value", flip_last_byte(stored(secret, "value")))

    loaded = fresh(secret)

    assert loaded.name == "a"
    assert loaded.note == "fine"
    with pytest.raises(crypto.DecryptionError):
        loaded.value


def test_update_with_plaintext_is_refused_and_nothing_is_written(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    before = stored(secret, "value")

    with (
        pytest.raises(crypto.CryptoError, match=r"cryptotest\.secret\.value is encrypted"),
        transaction.atomic(),
    ):
        Secret.objects.filter(pk=secret.pk).update(value="cleartext password")

    assert stored(secret, "value") == before


def test_bulk_update_with_plaintext_is_refused(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    before = stored(secret, "value")
    secret.value = "cleartext password"

    with pytest.raises(crypto.CryptoError, match="is encrypted"), transaction.atomic():
        Secret.objects.bulk_update([secret], ["value"])

    assert stored(secret, "value") == before


def test_update_may_clear_a_value(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value="x", note=PLAINTEXT)

    Secret.objects.filter(pk=secret.pk).update(note="")

    assert stored(secret, "note") == ""


def test_filtering_on_an_encrypted_column_is_refused(team: Team) -> None:
    Secret.objects.create(team=team, name="a", value=PLAINTEXT)

    with pytest.raises(crypto.CryptoError, match="is encrypted"):
        Secret.objects.filter(value=PLAINTEXT).exists()


def test_bulk_create_encrypts(team: Team) -> None:
    Secret.objects.bulk_create([Secret(team=team, name=f"s{n}", value=f"pw-{n}") for n in range(3)])

    for secret in Secret.objects.all():
        # No primary key before a bulk insert: bound to the column only, until rotate-keys.
        assert stored(secret, "value").startswith("pt1:")
        assert fresh(secret).value == f"pw-{secret.name[1:]}"


def test_deferred_value_is_decrypted_when_fetched(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)
    crypto.forget_cached_keys()

    loaded = Secret.objects.only("name").get(pk=secret.pk)

    assert loaded.value == PLAINTEXT


def test_values_and_values_list_give_the_stored_ciphertext_not_the_plaintext(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT)

    (from_values_list,) = Secret.objects.values_list("value", flat=True)
    (row,) = Secret.objects.values("value")

    assert from_values_list == row["value"] == stored(secret, "value")
    assert isinstance(from_values_list, Ciphertext)
    assert PLAINTEXT not in from_values_list


def test_dumpdata_writes_ciphertext_not_the_plaintext(team: Team) -> None:
    secret = Secret.objects.create(team=team, name="a", value=PLAINTEXT, note="hunter2")
    out = io.StringIO()

    call_command("dumpdata", "cryptotest.secret", stdout=out)

    dumped = out.getvalue()
    assert "hunter2" not in dumped
    (row,) = json.loads(dumped)
    assert row["fields"]["name"] == "a"
    dumped_value = row["fields"]["value"]
    assert dumped_value.startswith("pt2:")
    assert PLAINTEXT not in dumped_value
    assert (
        crypto.decrypt(dumped_value, context="cryptotest.secret.value", row=secret.pk) == PLAINTEXT
    )
    assert stored(secret, "value").startswith("pt2:")


def test_encrypted_fields_finds_every_encrypted_field_by_type() -> None:
    found = {model: {f.name for f in fields} for model, fields in encrypted_fields()}

    assert found[Secret] == {"value", "note"}
    assert found[Keypair] == {"private_key"}  # a subclass of EncryptedTextField
    assert isinstance(Keypair._meta.get_field("private_key"), PrivateKeyField)
    assert SecretAlias not in found  # a proxy shares Secret's table
    every = {
        (model, field.name)
        for model in apps.get_models()
        if not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, EncryptedTextField)
    }
    assert every == {(model, name) for model, names in found.items() for name in names}

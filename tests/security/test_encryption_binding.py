"""Ciphertext is bound to its row, wrapped data keys to theirs, and destroying a
data key takes effect in every process at once.

Uses the real Server model (its password is an EncryptedTextField) and, for the
cross-process test, a second real Pipetower process on the same database and
shared cache.
"""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.db import connection

from pipetower.core import crypto
from pipetower.core.models import DataKey
from pipetower.servers.models import Server
from pipetower.teams.models import Team
from tests.core._ops import database_url, embedded_env, run_pipetower
from tests.cryptotest.raw import store, stored
from tests.factories import TeamFactory

PASSWORD_ONE = "first-server-password-8c1f"
PASSWORD_TWO = "second-server-password-02aa"


def _server(team: Team, name: str, password: str) -> Server:
    server = Server(team=team, name=name, host="127.0.0.1", port=1, username="u")
    server.password = password
    server.save()
    return server


def _fresh(server: Server) -> Server:
    return Server.objects.get(pk=server.pk)


@pytest.mark.django_db
def test_a_password_copied_into_another_servers_row_does_not_decrypt(team: Team) -> None:
    one = _server(team, "one", PASSWORD_ONE)
    two = _server(team, "two", PASSWORD_TWO)
    assert stored(one, "password").startswith("pt2:")
    assert _fresh(two).password == PASSWORD_TWO  # the twin: an untouched row reads fine

    # Same team, same data key, same column: only the row binding can tell.
    store(two, "password", stored(one, "password"))

    with pytest.raises(crypto.DecryptionError, match="integrity check"):
        _fresh(two).password
    assert _fresh(one).password == PASSWORD_ONE


@pytest.mark.django_db
def test_a_legacy_value_still_decrypts_and_rotate_keys_binds_it_to_its_row(team: Team) -> None:
    server = _server(team, "legacy", "placeholder")
    legacy = crypto.encrypt(
        PASSWORD_ONE, data_key=team.encryption_key(), context="servers.server.password"
    )
    assert legacy.startswith("pt1:")
    store(server, "password", legacy)
    assert _fresh(server).password == PASSWORD_ONE

    call_command("rotate_keys", stdout=io.StringIO())

    assert stored(server, "password").startswith("pt2:")
    assert _fresh(server).password == PASSWORD_ONE
    # Once upgraded, the value no longer opens in another row.
    other = _server(team, "other", PASSWORD_TWO)
    store(other, "password", stored(server, "password"))
    with pytest.raises(crypto.DecryptionError):
        _fresh(other).password


@pytest.mark.django_db
def test_a_wrapped_data_key_copied_into_another_row_does_not_open(team: Team) -> None:
    other_team = TeamFactory()
    _server(team, "a", PASSWORD_ONE)
    victim = team.encryption_key()
    thief = other_team.encryption_key()
    crypto.data_key_material(thief.pk)  # the twin: the thief's own key opens

    DataKey.objects.filter(pk=thief.pk).update(
        wrapped=victim.wrapped, master_key_id=victim.master_key_id
    )
    crypto.forget_cached_keys()

    with pytest.raises(crypto.MasterKeyError, match="does not open"):
        crypto.data_key_material(thief.pk)
    assert len(crypto.data_key_material(victim.pk)) == 32


@pytest.mark.django_db
def test_a_legacy_wrapped_key_still_opens_and_rotation_binds_it(team: Team) -> None:
    server = _server(team, "s", PASSWORD_ONE)
    data_key = team.encryption_key()
    material = crypto.data_key_material(data_key.pk)
    # Re-wrap as an older Pipetower did: bound to nothing but the purpose.
    primary = crypto.keyring()[0]
    nonce = os.urandom(12)
    v1 = nonce + AESGCM(primary.material).encrypt(nonce, material, b"pipetower:data-key:v1")
    DataKey.objects.filter(pk=data_key.pk).update(wrapped=v1)
    crypto.forget_cached_keys()
    assert _fresh(server).password == PASSWORD_ONE

    assert crypto.data_keys_rewrap() >= 1

    rewrapped = bytes(DataKey.objects.get(pk=data_key.pk).wrapped)
    assert rewrapped.startswith(b"ptk2") and rewrapped != v1
    crypto.forget_cached_keys()
    assert _fresh(server).password == PASSWORD_ONE


@pytest.mark.django_db(transaction=True)
def test_destroying_a_data_key_in_another_process_takes_effect_at_once(
    team: Team, settings: Any
) -> None:
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        # The test settings use a per-process memory cache; the other process
        # uses the embedded default, a file cache in the data directory: share it.
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(settings.DATA_DIR / "cache"),
            }
        }
    server = _server(team, "s", PASSWORD_ONE)
    data_key_id = team.encryption_key().pk
    assert _fresh(server).password == PASSWORD_ONE  # this process now has the key cached

    extra = {"DATABASE_URL": database_url(connection.settings_dict)}
    keys = settings.MASTER_KEYS
    extra["PIPETOWER_MASTER_KEYS"] = keys if isinstance(keys, str) else ",".join(keys)
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        extra["CACHE_URL"] = settings.CACHES["default"]["LOCATION"]
    script = (
        "from pipetower.core import crypto; from pipetower.core.models import DataKey; "
        f"crypto.data_key_destroy(data_key=DataKey.objects.get(pk={data_key_id})); "
        "print('destroyed')"
    )
    done = run_pipetower(
        "manage", "shell", "-c", script, env=embedded_env(settings.DATA_DIR, **extra), timeout=120
    )
    assert "destroyed" in done.stdout, done.stdout + done.stderr

    # Well within the 60-second cache: this process must not use its cached copy.
    with pytest.raises(crypto.DecryptionError, match="destroyed"):
        _fresh(server).password

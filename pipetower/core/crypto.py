"""Envelope encryption for secrets stored in the database.

Master keys come from `PIPETOWER_MASTER_KEYS` (comma-separated, URL-safe base64
of 32 bytes; the first encrypts, all decrypt). Each account and each team owns a
`DataKey`: 32 random bytes wrapped with the primary master key using AES-256-GCM.
Field values are encrypted with the owner's data key, also AES-256-GCM, and are
stored as versioned text: ``pt1:<data key id>:<base64(nonce || ciphertext)>``.
The model label and field name are bound in as associated data, so a value
copied into another column does not decrypt, and the field refuses a value whose
data key is not its owner's, so a value copied into another owner's row does not
decrypt either. Every failure raises `DecryptionError` or `MasterKeyError`; no
path returns ciphertext or garbage in place of the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipetower.core.models import DataKey

VERSION = "pt1"
_WRAP_AAD = b"pipetower:data-key:v1"
_CACHE_SECONDS = 60.0
_NONCE_BYTES = 12
_TAG_BYTES = 16


class CryptoError(Exception):
    """Base class for every encryption failure; the message is for people."""


class MasterKeyError(CryptoError):
    """The configured master keys are missing, malformed or do not fit the data."""


class DecryptionError(CryptoError):
    """A stored value cannot be decrypted (destroyed key, tampering, wrong key)."""


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    material: bytes


def master_key_id(material: bytes) -> str:
    return hashlib.sha256(b"pipetower-master-key-id" + material).hexdigest()[:16]


def parse_master_key(text: str, *, position: int | None = None) -> MasterKey:
    """One master key from its URL-safe base64 text; the message never echoes the key."""
    where = "A master key" if position is None else f"Master key number {position}"
    compact = text.strip().rstrip("=")
    try:
        material = base64.b64decode(
            compact + "=" * (-len(compact) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, ValueError):
        material = b""
    if len(material) != 32:
        raise MasterKeyError(
            f"{where} in PIPETOWER_MASTER_KEYS is not a valid key: each key must be 32 bytes "
            "in URL-safe base64, keys separated by commas (generate one with `pipetower keygen`)."
        )
    return MasterKey(master_key_id(material), material)


def keyring() -> list[MasterKey]:
    """The configured master keys, primary first."""
    configured = settings.MASTER_KEYS
    if isinstance(configured, str):
        configured = [part for part in configured.split(",") if part.strip()]
    keys = [parse_master_key(text, position=number) for number, text in enumerate(configured, 1)]
    if not keys:
        raise MasterKeyError("No master key is configured: set PIPETOWER_MASTER_KEYS.")
    return keys


def _master(key_id: str) -> MasterKey:
    for key in keyring():
        if key.key_id == key_id:
            return key
    raise MasterKeyError(
        f"Master key {key_id} is not in PIPETOWER_MASTER_KEYS; data wrapped with it cannot be "
        "read. Add the old key back (after the new one) and run `pipetower rotate-keys`."
    )


# --- data keys ---------------------------------------------------------------

_cache: dict[int, tuple[float, bytes]] = {}
_cache_lock = threading.Lock()


def _wrap(material: bytes) -> tuple[str, bytes]:
    primary = keyring()[0]
    nonce = os.urandom(12)
    return primary.key_id, nonce + AESGCM(primary.material).encrypt(nonce, material, _WRAP_AAD)


def _unwrap(data_key: DataKey) -> bytes:
    if data_key.destroyed_at is not None or not data_key.wrapped:
        raise DecryptionError(
            f"Data key {data_key.pk} was destroyed; values encrypted with it are unreadable."
        )
    blob = bytes(data_key.wrapped)
    master = _master(data_key.master_key_id)
    try:
        return AESGCM(master.material).decrypt(blob[:12], blob[12:], _WRAP_AAD)
    except InvalidTag:
        raise MasterKeyError(
            f"Data key {data_key.pk} does not open with master key {master.key_id}: "
            "the master key or the stored data key has been altered."
        ) from None


def data_key_create(*, purpose: str) -> DataKey:
    key_id, wrapped = _wrap(AESGCM.generate_key(bit_length=256))
    return DataKey.objects.create(purpose=purpose, master_key_id=key_id, wrapped=wrapped)


def data_key_material(data_key_id: int) -> bytes:
    """The unwrapped data key, cached in this process for a minute."""
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(data_key_id)
        if cached and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
    try:
        data_key = DataKey.objects.get(pk=data_key_id)
    except DataKey.DoesNotExist:
        raise DecryptionError(f"Data key {data_key_id} no longer exists.") from None
    material = _unwrap(data_key)
    with _cache_lock:
        _cache[data_key_id] = (now, material)
    return material


def data_key_destroy(*, data_key: DataKey) -> None:
    """Crypto-shred: wipe the wrapped key so its ciphertext can never be read."""
    DataKey.objects.filter(pk=data_key.pk).update(
        wrapped=None, master_key_id="", destroyed_at=timezone.now()
    )
    data_key.wrapped = None
    data_key.master_key_id = ""
    data_key.destroyed_at = timezone.now()
    forget_cached_keys()


def data_keys_rewrap() -> int:
    """Re-wrap every live data key with the primary master key; returns the count."""
    count = 0
    primary = keyring()[0]
    pending = list(
        DataKey.objects.filter(destroyed_at__isnull=True)
        .exclude(master_key_id=primary.key_id)
        .values_list("pk", flat=True)
    )
    for pk in pending:
        with transaction.atomic():
            # Locked and re-read: a key destroyed meanwhile must stay destroyed.
            data_key = (
                DataKey.objects.select_for_update()
                .filter(pk=pk, destroyed_at__isnull=True)
                .exclude(master_key_id=primary.key_id)
                .first()
            )
            if data_key is None:
                continue
            key_id, wrapped = _wrap(_unwrap(data_key))
            DataKey.objects.filter(pk=pk, destroyed_at__isnull=True).update(
                master_key_id=key_id, wrapped=wrapped, rotated_at=timezone.now()
            )
        count += 1
    forget_cached_keys()
    return count


def forget_cached_keys() -> None:
    with _cache_lock:
        _cache.clear()


def master_keys_verify() -> list[str]:
    """Problems that would stop Pipetower from reading its own data (empty when fine)."""
    try:
        ids = {key.key_id for key in keyring()}
    except MasterKeyError as exc:
        return [str(exc)]
    problems = []
    unknown = (
        DataKey.objects.filter(destroyed_at__isnull=True)
        .exclude(master_key_id__in=ids)
        .values_list("master_key_id", flat=True)
        .distinct()
    )
    for key_id in unknown:
        problems.append(
            f"Some data keys are wrapped with master key {key_id}, which is not in "
            "PIPETOWER_MASTER_KEYS: the configured master key is wrong or missing."
        )
    sample = DataKey.objects.filter(destroyed_at__isnull=True, master_key_id__in=ids).first()
    if sample is not None:
        try:
            _unwrap(sample)
        except CryptoError as exc:
            problems.append(str(exc))
    return problems


# --- values ------------------------------------------------------------------


def encrypt(plaintext: str, *, data_key: DataKey, context: str) -> str:
    material = data_key_material(data_key.pk)
    nonce = os.urandom(12)
    sealed = AESGCM(material).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}:{data_key.pk}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def parse_token(token: str) -> tuple[int, bytes]:
    try:
        version, key_id, payload = token.split(":", 2)
        if version != VERSION or not (key_id.isascii() and key_id.isdigit()):
            raise ValueError(version)
        blob = base64.b64decode(payload.encode(), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise DecryptionError("The stored value is not Pipetower ciphertext.") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError("The stored value is too short to be Pipetower ciphertext.")
    return int(key_id), blob


def decrypt(token: str, *, context: str, data_key_id: int | None = None) -> str:
    """The plaintext of `token`, or DecryptionError.

    `data_key_id`, when given, is the owner's data key: a value encrypted under
    any other key (copied from another owner's row) is refused.
    """
    token_key_id, blob = parse_token(token)
    if data_key_id is not None and token_key_id != data_key_id:
        raise DecryptionError(
            f"A value for {context} was encrypted for a different owner: it was moved or copied."
        )
    try:
        material = data_key_material(token_key_id)
    except MasterKeyError as exc:
        raise DecryptionError(f"A value for {context} cannot be read: {exc}") from exc
    try:
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        return AESGCM(material).decrypt(nonce, sealed, context.encode()).decode()
    except InvalidTag:
        raise DecryptionError(
            f"A value for {context} failed its integrity check: it was altered or moved."
        ) from None

"""Envelope encryption for secrets stored in the database.

Master keys come from `PIPETOWER_MASTER_KEYS` (comma-separated, URL-safe base64
of 32 bytes; the first encrypts, all decrypt). Each account and each team owns a
`DataKey`: 32 random bytes wrapped with the primary master key using AES-256-GCM.
Field values are encrypted with the owner's data key, also AES-256-GCM, and are
stored as versioned text: ``pt2:<data key id>:<base64(nonce || ciphertext)>``.
The model label, field name and the row's primary key are bound in as
associated data, so a value copied into another column or another row does not
decrypt, and the field refuses a value whose data key is not its owner's.
``pt1`` values (bound to the column only) still decrypt; `rotate-keys` rewrites
them as ``pt2``. Wrapped data keys are bound to their own row the same way.

Unwrapped data keys are cached per process for a minute, but every cache hit
first compares a key generation kept in the shared Django cache: destroying a
data key changes it, so every process drops its cached keys at once.

Every failure raises `DecryptionError` or `MasterKeyError`; no path returns
ciphertext or garbage in place of the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from pipetower.core.models import DataKey

VERSION = "pt2"  # bound to model, field and row
LEGACY_VERSION = "pt1"  # bound to model and field only; still decrypts
_WRAP_AAD = b"pipetower:data-key:v1"
_WRAP_V2 = b"ptk2"  # prefix of a wrapped key bound to its DataKey row
_GENERATION_KEY = "pipetower:data-key-generation"
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
_cache_generation = ""
_cache_lock = threading.Lock()


def _wrap_aad(pk: int) -> bytes:
    return b"pipetower:data-key:v2:" + str(pk).encode()


def _wrap(material: bytes, pk: int) -> tuple[str, bytes]:
    primary = keyring()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(primary.material).encrypt(nonce, material, _wrap_aad(pk))
    return primary.key_id, _WRAP_V2 + nonce + sealed


def _is_bound(blob: bytes) -> bool:
    # v1: nonce (12) + key (32) + tag (16) = 60 bytes; v2 adds the 4-byte prefix.
    return len(blob) == 64 and blob.startswith(_WRAP_V2)


def _unwrap(data_key: DataKey) -> bytes:
    if data_key.destroyed_at is not None or not data_key.wrapped:
        raise DecryptionError(
            f"Data key {data_key.pk} was destroyed; values encrypted with it are unreadable."
        )
    blob = bytes(data_key.wrapped)
    master = _master(data_key.master_key_id)
    aad = _WRAP_AAD
    if _is_bound(blob):
        blob, aad = blob[len(_WRAP_V2) :], _wrap_aad(data_key.pk)
    try:
        return AESGCM(master.material).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag:
        raise MasterKeyError(
            f"Data key {data_key.pk} does not open with master key {master.key_id}: "
            "the master key or the stored data key has been altered."
        ) from None


def data_key_create(*, purpose: str) -> DataKey:
    """A new data key, wrapped for its own row (so it only opens there)."""
    with transaction.atomic():
        data_key = DataKey.objects.create(purpose=purpose, master_key_id="", wrapped=b"")
        key_id, wrapped = _wrap(AESGCM.generate_key(bit_length=256), data_key.pk)
        DataKey.objects.filter(pk=data_key.pk).update(master_key_id=key_id, wrapped=wrapped)
    data_key.master_key_id, data_key.wrapped = key_id, wrapped
    return data_key


def _generation() -> str:
    """The shared key generation; a new one is made when none is stored (cache cleared)."""
    current = cache.get(_GENERATION_KEY)
    if current is None:
        current = os.urandom(8).hex()
        if not cache.add(_GENERATION_KEY, current, timeout=None):
            current = cache.get(_GENERATION_KEY) or current
    return str(current)


def _generation_bump() -> None:
    cache.set(_GENERATION_KEY, os.urandom(8).hex(), timeout=None)


def data_key_material(data_key_id: int) -> bytes:
    """The unwrapped data key, cached in this process for a minute.

    A cached key is used only while the shared key generation is the one it was
    cached under: a key destroyed by any process is never used again by another.
    """
    global _cache_generation
    now = time.monotonic()
    generation = _generation()
    with _cache_lock:
        if generation != _cache_generation:
            _cache.clear()
            _cache_generation = generation
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
    # Other processes drop their cached keys on their next use of any key.
    _generation_bump()
    transaction.on_commit(_generation_bump)


def data_keys_rewrap() -> int:
    """Re-wrap with the primary master key, bound to its row, every live data key
    that is not so already; returns the count."""
    count = 0
    primary = keyring()[0]
    pending = [
        pk
        for pk, master_key_id, wrapped in DataKey.objects.filter(
            destroyed_at__isnull=True
        ).values_list("pk", "master_key_id", "wrapped")
        if master_key_id != primary.key_id or not (wrapped and _is_bound(bytes(wrapped)))
    ]
    for pk in pending:
        with transaction.atomic():
            # Locked and re-read: a key destroyed meanwhile must stay destroyed.
            data_key = (
                DataKey.objects.select_for_update().filter(pk=pk, destroyed_at__isnull=True).first()
            )
            if data_key is None:
                continue
            key_id, wrapped = _wrap(_unwrap(data_key), data_key.pk)
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


def _value_aad(context: str, row: Any) -> bytes:
    return f"{context}#{row}".encode()


def encrypt(plaintext: str, *, data_key: DataKey, context: str, row: Any = None) -> str:
    """Ciphertext of `plaintext` for `context` (model label and field name).

    With `row` (the row's primary key) the value is bound to that row too
    (format pt2); without it, to the column only (pt1, for rows not saved yet).
    """
    material = data_key_material(data_key.pk)
    nonce = os.urandom(12)
    if row is None:
        version, aad = LEGACY_VERSION, context.encode()
    else:
        version, aad = VERSION, _value_aad(context, row)
    sealed = AESGCM(material).encrypt(nonce, plaintext.encode(), aad)
    return f"{version}:{data_key.pk}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def token_version(token: str) -> str:
    return token.split(":", 1)[0]


def parse_token(token: str) -> tuple[int, bytes]:
    try:
        version, key_id, payload = token.split(":", 2)
        if version not in (VERSION, LEGACY_VERSION) or not (key_id.isascii() and key_id.isdigit()):
            raise ValueError(version)
        blob = base64.b64decode(payload.encode(), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise DecryptionError("The stored value is not Pipetower ciphertext.") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError("The stored value is too short to be Pipetower ciphertext.")
    return int(key_id), blob


def decrypt(token: str, *, context: str, data_key_id: int | None = None, row: Any = None) -> str:
    """The plaintext of `token`, or DecryptionError.

    `data_key_id`, when given, is the owner's data key: a value encrypted under
    any other key (copied from another owner's row) is refused. A pt2 value
    opens only with the `row` it was encrypted for.
    """
    token_key_id, blob = parse_token(token)
    if data_key_id is not None and token_key_id != data_key_id:
        raise DecryptionError(
            f"A value for {context} was encrypted for a different owner: it was moved or copied."
        )
    if token_version(token) == VERSION:
        if row is None:
            raise DecryptionError(f"A value for {context} is bound to a row; none was given.")
        aad = _value_aad(context, row)
    else:
        aad = context.encode()
    try:
        material = data_key_material(token_key_id)
    except MasterKeyError as exc:
        raise DecryptionError(f"A value for {context} cannot be read: {exc}") from exc
    try:
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        return AESGCM(material).decrypt(nonce, sealed, aad).decode()
    except InvalidTag:
        raise DecryptionError(
            f"A value for {context} failed its integrity check: it was altered or moved."
        ) from None

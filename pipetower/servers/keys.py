"""SSH key handling: generate team keys, read uploaded keys, read pasted host keys.

Everything here is pure (no database, no network). Failures raise `SshError`
with kind "key_format" or "passphrase" and a message meant for the form.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncssh

from pipetower.servers.errors import SshError

MAX_PRIVATE_KEY_CHARS = 20_000
MAX_HOST_KEY_LINES = 20
_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-")


@dataclass(frozen=True)
class KeyMaterial:
    """A private key ready to store: unencrypted OpenSSH text, its public line and fingerprint."""

    private_openssh: str
    public_line: str  # "ssh-ed25519 AAAA…" without a comment
    fingerprint: str  # "SHA256:…"
    algorithm: str

    def authorized_keys_line(self, comment: str) -> str:
        return f"{self.public_line} {comment}".strip()


def public_line_of(key: asyncssh.SSHKey) -> str:
    """The OpenSSH public key line (`type base64`) of a public or private key, no comment."""
    parts = key.export_public_key("openssh").decode().split()
    return f"{parts[0]} {parts[1]}"


def fingerprint_of(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


# Host key types in the order Pipetower asks hosts for them: Ed25519 first, because it
# is what admins are told to compare with (`ssh_host_ed25519_key.pub`), then ECDSA, then RSA.
PREFERRED_HOST_KEY_ALGS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)
# The key types a host can have, in the order the server page lists them (and
# Pipetower pins the first the host has): one handshake per family fetches each.
HOST_KEY_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("ssh-ed25519",),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
    ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
)
_KEY_TYPES = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA", "ssh-dss": "DSA"}
_TYPE_ORDER = {"ED25519": 0, "ECDSA": 1, "RSA": 2}


def host_key_lines(text: str) -> list[str]:
    """The key lines in `text` (one per line), Ed25519 first, then ECDSA, then RSA."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return sorted(lines, key=lambda line: _TYPE_ORDER.get(key_type_of_line(line), 9))


def host_key_label_of_line(line: str) -> str:
    """A key as `ssh-keygen -l` shows it: 'ED25519 SHA256:…'."""
    return f"{key_type_of_line(line)} {fingerprint_of_line(line)}"


def key_type_of_line(line: str) -> str:
    """'ED25519', 'ECDSA' or 'RSA' for an OpenSSH key line (as `ssh-keygen -l` names it)."""
    kind = line.split()[0] if line.split() else ""
    if kind.startswith("ecdsa-"):
        return "ECDSA"
    return _KEY_TYPES.get(kind, kind.upper() or "unknown")


def host_key_file_of_line(line: str) -> str:
    """The file on the server that holds this type of host key."""
    name = {"ED25519": "ed25519", "ECDSA": "ecdsa", "RSA": "rsa", "DSA": "dsa"}.get(
        key_type_of_line(line), "ed25519"
    )
    return f"/etc/ssh/ssh_host_{name}_key.pub"


def fingerprint_of_line(line: str) -> str:
    """SHA256 fingerprint of an OpenSSH public key line; "(unreadable key)" if it does not parse."""
    try:
        return fingerprint_of(asyncssh.import_public_key(line.strip()))
    except (asyncssh.KeyImportError, ValueError):
        return "(unreadable key)"


def _material(key: asyncssh.SSHKey) -> KeyMaterial:
    return KeyMaterial(
        private_openssh=key.export_private_key("openssh").decode(),
        public_line=public_line_of(key),
        fingerprint=fingerprint_of(key),
        algorithm=key.get_algorithm(),
    )


def generate_ed25519() -> KeyMaterial:
    """A fresh ED25519 keypair (the team key)."""
    return _material(asyncssh.generate_private_key("ssh-ed25519"))


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text + "\n" if text else ""


def import_uploaded_key(text: str, passphrase: str = "") -> KeyMaterial:
    """Read an uploaded private key (OpenSSH or PEM), opening it with `passphrase` if needed.

    Returns the key re-exported without a passphrase: it is stored in an
    encrypted field, so the passphrase itself is never kept.
    """
    text = _normalise(text)
    if not text:
        raise SshError("key_format", "Paste or upload the private key.")
    if len(text) > MAX_PRIVATE_KEY_CHARS:
        raise SshError("key_format", "That is too long to be an SSH private key.")
    first = text.split(None, 1)[0]
    if first.startswith(_KEY_TYPE_PREFIXES) and "PRIVATE KEY" not in text:
        raise SshError(
            "key_format",
            "This is a public key. Upload the private key: the file without `.pub` "
            "(for example id_ed25519), starting with -----BEGIN.",
        )
    try:
        key = asyncssh.import_private_key(text)
    except asyncssh.KeyImportError as exc:
        if "assphrase" not in str(exc):
            raise SshError(
                "key_format",
                "This is not a private key Pipetower can read. Upload an OpenSSH "
                "(-----BEGIN OPENSSH PRIVATE KEY-----) or PEM (-----BEGIN RSA/EC/PRIVATE KEY-----) "
                f"private key. ({exc})",
            ) from None
        if not passphrase:
            raise SshError(
                "passphrase", "This key is protected by a passphrase: enter it to upload the key."
            ) from None
        try:
            key = asyncssh.import_private_key(text, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
            raise SshError(
                "passphrase", "The passphrase is wrong: it does not open this key."
            ) from None
    except asyncssh.KeyEncryptionError as exc:
        raise SshError("key_format", f"This key cannot be opened: {exc}.") from None
    return _material(key)


def load_private_key(text: str) -> asyncssh.SSHKey:
    """A stored (unencrypted) private key, for connecting."""
    try:
        return asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise SshError(
            "key_format", f"The stored private key cannot be read ({exc}); upload it again."
        ) from None


def parse_host_keys(text: str) -> list[str]:
    """Public host keys from pasted `known_hosts` lines or bare public key lines.

    Accepts `host[,host…] type base64 [comment]` (hashed host names too) and
    `type base64 [comment]`. Returns normalised `type base64` lines, no duplicates.
    """
    lines = [
        line.strip()
        for line in _normalise(text).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        raise SshError(
            "key_format",
            "Paste a known_hosts line (for example the output of `ssh-keyscan -t ed25519 HOST`) "
            "or the host's public key (/etc/ssh/ssh_host_ed25519_key.pub).",
        )
    if len(lines) > MAX_HOST_KEY_LINES:
        raise SshError("key_format", f"Paste at most {MAX_HOST_KEY_LINES} host key lines.")
    found: list[str] = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if tokens[0].startswith("@"):
            raise SshError(
                "key_format",
                f"Line {number}: {tokens[0]} lines are not supported; paste the host's own key.",
            )
        start = 0 if tokens[0].startswith(_KEY_TYPE_PREFIXES) else 1
        if len(tokens) < start + 2:
            raise SshError(
                "key_format", f"Line {number} is not a known_hosts line or a public key."
            )
        try:
            key = asyncssh.import_public_key(f"{tokens[start]} {tokens[start + 1]}")
        except (asyncssh.KeyImportError, ValueError):
            raise SshError(
                "key_format",
                f"Line {number} does not hold a public key Pipetower can read "
                f"({tokens[start][:40]} …).",
            ) from None
        normalised = public_line_of(key)
        if normalised not in found:
            found.append(normalised)
    return found

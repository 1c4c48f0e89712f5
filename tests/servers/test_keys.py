"""Reading uploaded private keys and pasted host keys (`pipetower.servers.keys`)."""

from __future__ import annotations

import asyncssh
import pytest

from pipetower.servers.keys import (
    generate_ed25519,
    import_uploaded_key,
    load_private_key,
    parse_host_keys,
    public_line_of,
)
from pipetower.servers.ssh import SshError


def test_a_generated_team_key_is_ed25519_with_a_sha256_fingerprint():
    material = generate_ed25519()

    assert material.algorithm == "ssh-ed25519"
    assert material.public_line.startswith("ssh-ed25519 AAAA")
    assert material.fingerprint.startswith("SHA256:")
    assert material.authorized_keys_line("pipetower-engines").endswith(" pipetower-engines")
    assert public_line_of(load_private_key(material.private_openssh)) == material.public_line


def test_an_openssh_key_without_a_passphrase_is_read(keyfiles):
    material = import_uploaded_key(keyfiles("ed25519"))

    assert material.algorithm == "ssh-ed25519"
    assert "BEGIN OPENSSH PRIVATE KEY" in material.private_openssh


def test_a_key_with_a_passphrase_is_stored_opened(keyfiles):
    text = keyfiles("ed25519", passphrase="open sesame")

    material = import_uploaded_key(text, "open sesame")

    # Re-exported without the passphrase: it loads with none.
    assert public_line_of(load_private_key(material.private_openssh)) == material.public_line


def test_a_pem_rsa_key_with_a_passphrase_is_read(keyfiles):
    material = import_uploaded_key(keyfiles("rsa", passphrase="pw-123", pem=True), "pw-123")

    assert material.algorithm == "ssh-rsa"


def test_windows_line_endings_are_accepted(keyfiles):
    text = keyfiles("ed25519").replace("\n", "\r\n")

    assert import_uploaded_key(text).algorithm == "ssh-ed25519"


def test_a_protected_key_without_its_passphrase_asks_for_it(keyfiles):
    with pytest.raises(SshError) as caught:
        import_uploaded_key(keyfiles("ed25519", passphrase="secret"))

    assert caught.value.kind == "passphrase"
    assert "protected by a passphrase" in caught.value.message


@pytest.mark.parametrize(("kind", "pem"), [("ed25519", False), ("rsa", True)])
def test_a_wrong_passphrase_is_named_as_such(keyfiles, kind, pem):
    with pytest.raises(SshError) as caught:
        import_uploaded_key(keyfiles(kind, passphrase="secret", pem=pem), "wrong")

    assert caught.value.kind == "passphrase"
    assert "passphrase is wrong" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "not a key at all",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nZm9v\n-----END RSA PRIVATE KEY-----\n",
    ],
)
def test_text_that_is_not_a_private_key_is_a_format_error(text):
    with pytest.raises(SshError) as caught:
        import_uploaded_key(text)

    assert caught.value.kind == "key_format"
    assert "not a private key Pipetower can read" in caught.value.message


def test_a_public_key_pasted_by_mistake_says_so():
    public = public_line_of(asyncssh.generate_private_key("ssh-ed25519")) + " me@laptop"

    with pytest.raises(SshError) as caught:
        import_uploaded_key(public)

    assert caught.value.kind == "key_format"
    assert "This is a public key" in caught.value.message


def test_host_keys_are_read_from_known_hosts_lines_and_public_keys():
    ed = public_line_of(asyncssh.generate_private_key("ssh-ed25519"))
    ec = public_line_of(asyncssh.generate_private_key("ecdsa-sha2-nistp256"))
    text = (
        "# ssh-keyscan output\n"
        f"web-1.example.com,192.0.2.10 {ed}\n"
        f"|1|c2FsdA==|aGFzaA== {ec} a comment\n"
        f"{ed} root@web-1\n"
    )

    assert parse_host_keys(text) == [ed, ec]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Paste a known_hosts line"),
        ("web-1 ssh-ed25519 notbase64!!", "Line 1 does not hold a public key"),
        ("web-1", "Line 1 is not a known_hosts line"),
        ("@cert-authority *.example.com ssh-ed25519 AAAA", "not supported"),
    ],
)
def test_unreadable_host_key_text_is_explained(text, message):
    with pytest.raises(SshError) as caught:
        parse_host_keys(text)

    assert caught.value.kind == "key_format"
    assert message in caught.value.message

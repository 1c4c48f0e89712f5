"""What can go wrong when Pipetower talks SSH, in words a person can act on.

Import these from `pipetower.servers.ssh`; they live here so that `keys.py`
can raise them without importing the connection code.
"""

from __future__ import annotations

from collections.abc import Sequence

ERROR_KINDS = frozenset(
    {
        "dns",
        "refused",
        "timeout",
        "auth_failed",
        "key_format",
        "passphrase",
        "host_key_changed",
        "host_key_unknown",
        "unreachable",
        "lost",
        "forbidden",
    }
)

ERROR_TITLES = {
    "dns": "Host name not found",
    "refused": "Connection refused",
    "timeout": "Timed out",
    "auth_failed": "Login refused",
    "key_format": "Key not readable",
    "passphrase": "Wrong or missing passphrase",
    "host_key_changed": "Host key changed",
    "host_key_unknown": "Host key not pinned",
    "unreachable": "Host unreachable",
    "lost": "Connection lost",
    "forbidden": "Address not allowed",
}


class SshError(Exception):
    """An SSH failure. `kind` is one of ERROR_KINDS; `message` is shown as is."""

    def __init__(self, kind: str, message: str, *, presented_host_key: str = "") -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown SSH error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        # The host key the server presented, when the failure is about it.
        self.presented_host_key = presented_host_key

    @property
    def title(self) -> str:
        return ERROR_TITLES[self.kind]

    def __str__(self) -> str:
        return self.message


class HostKeyUnknown(SshError):
    """No pin, and trust on first use is off: Pipetower refuses to connect."""

    def __init__(self, message: str, *, presented_host_key: str = "") -> None:
        super().__init__("host_key_unknown", message, presented_host_key=presented_host_key)


class HostKeyChanged(SshError):
    """The host presented a key that is not the pinned one."""

    def __init__(
        self,
        *,
        address: str,
        pinned_fingerprints: Sequence[str],
        new_fingerprint: str,
        presented_host_key: str = "",
        detail: str = "",
    ) -> None:
        self.pinned_fingerprints = tuple(pinned_fingerprints)
        self.new_fingerprint = new_fingerprint
        old = ", ".join(self.pinned_fingerprints)
        message = (
            f"Host key changed for {address}: the pinned key is {old}, but the host now "
            f"presents {new_fingerprint or 'an unknown key'}. "
            + (f"{detail} " if detail else "")
            + "This happens when the server was reinstalled or its keys were regenerated, but "
            "it is also what an attacker in the middle looks like. Pipetower will not connect "
            "until an admin checks the new fingerprint and re-pins it."
        )
        super().__init__("host_key_changed", message, presented_host_key=presented_host_key)

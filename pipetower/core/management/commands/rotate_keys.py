"""`pipetower rotate-keys`: put every stored secret under the first master key.

Put the new key first in PIPETOWER_MASTER_KEYS and keep the old ones after it,
run this, then remove the old keys. Old backups then hold data keys wrapped
with retired master keys only.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pipetower.core import crypto
from pipetower.core.fields import encrypted_fields_rotate


class Command(BaseCommand):
    help = (
        "Re-wrap every data key with the first master key in PIPETOWER_MASTER_KEYS and "
        "re-encrypt every encrypted value."
    )
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            primary = crypto.keyring()[0]
            counts = encrypted_fields_rotate()
        except crypto.CryptoError as exc:
            raise CommandError(f"Nothing more was rotated: {exc}") from None
        data_keys = counts.pop("data keys", 0)
        unreadable = counts.pop("unreadable values", 0)
        self.stdout.write(
            f"Re-wrapped {data_keys} data {'key' if data_keys == 1 else 'keys'} "
            f"with master key {primary.key_id}."
        )
        for label, values in sorted(counts.items()):
            noun = "value" if values == 1 else "values"
            self.stdout.write(f"  {label}: {values} {noun} re-encrypted")
        if unreadable:
            self.stdout.write(
                f"{unreadable} {'value' if unreadable == 1 else 'values'} could not be decrypted "
                "(data key destroyed, or value altered) and "
                f"{'was' if unreadable == 1 else 'were'} left as stored."
            )
        self.stdout.write(
            "Every secret is now under the first master key. Older keys can be removed from "
            "PIPETOWER_MASTER_KEYS once every process runs with the new list."
        )

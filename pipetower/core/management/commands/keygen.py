"""`pipetower keygen`: print a new master key (32 random bytes, URL-safe base64)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from pipetower.config.env import new_master_key


class Command(BaseCommand):
    help = (
        "Print a new master key for PIPETOWER_MASTER_KEYS. To rotate, put it first, keep the "
        "old keys after it, then run `pipetower rotate-keys`."
    )
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(new_master_key())

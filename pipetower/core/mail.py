"""The embedded default email backend: every message to the console and to a file.

Files land in `<data dir>/mail/` (one `.log` file per connection, as Django's
file backend writes them), so a person running `make serve` can open a
verification link without any mail server.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class ConsoleAndFileBackend(BaseEmailBackend):
    def __init__(self, *, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        alias = kwargs.get("alias")
        if file_path:
            # Messages hold sign-in and reset links: only Pipetower's user may read them.
            os.makedirs(file_path, mode=0o700, exist_ok=True)
            os.chmod(file_path, 0o700)
        self.console = ConsoleBackend(alias=alias)
        self.file = FileBackend(file_path=file_path, alias=alias)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.console.send_messages(email_messages)
        return self.file.send_messages(email_messages)

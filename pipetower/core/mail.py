"""The embedded default email backend: every message to the console and to a file.

Messages are written as people read them (headers, then the plain-text body,
not MIME with quoted-printable line breaks), so a person running `make serve`
can copy a verification link straight from the terminal or from
`<data dir>/mail/`, without any mail server.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

_lock = threading.Lock()
RULE = "-" * 79


def readable(message: EmailMessage) -> str:
    """One message as plain text: the headers people care about, then the body."""
    mime = message.message()
    lines = [
        f"Date: {mime['Date']}",
        f"From: {message.from_email}",
        f"To: {', '.join(message.to)}",
    ]
    if message.cc:
        lines.append(f"Cc: {', '.join(message.cc)}")
    lines += [f"Subject: {message.subject}", "", str(message.body).rstrip(), RULE, ""]
    return "\n".join(lines)


class ConsoleAndFileBackend(BaseEmailBackend):
    def __init__(self, *, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = Path(file_path) if file_path else None
        if self.folder:
            # Messages hold sign-in and reset links: only Pipetower's user may read them.
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            os.chmod(self.folder, 0o700)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        text = "".join(readable(message) for message in email_messages)
        with _lock:
            sys.stdout.write(text)
            sys.stdout.flush()
            if self.folder:
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                name = f"{stamp}-{os.getpid()}-{id(email_messages)}.log"
                fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
        return len(email_messages)

"""A real SMTP server for tests: aiosmtpd on a free loopback port (see `smtp_sink`)."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Delivery:
    """One message as the server received it: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    host: str
    port: int
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def mailer(self) -> dict[str, Any]:
        """A `MAILERS` entry that sends here through Django's SMTP backend."""
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": self.host, "port": self.port, "timeout": 10},
        }

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        """The deliveries, once at least `count` have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s) at the SMTP server, got {len(self.deliveries)}"
                )
            time.sleep(0.05)
        return list(self.deliveries)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def start_sink(host: str = "127.0.0.1") -> tuple[SmtpSink, Controller]:
    sink = SmtpSink(host=host, port=free_port(host))
    controller = Controller(sink, hostname=host, port=sink.port)
    controller.start()
    return sink, controller

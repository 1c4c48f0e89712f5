"""Delivering notifications: which rules a finished run triggers, the emails, and
the signed webhook POSTs with their retries.

A webhook delivery is one POST of a JSON body with these headers:

- `X-Pipetower-Signature: sha256=<hex>`: the HMAC-SHA256 of the exact body with
  the rule's secret;
- `X-Pipetower-Timestamp: <unix seconds>`: when it was sent; the body carries
  the same value as `timestamp`, so it is covered by the signature and a
  receiver can refuse old deliveries;
- `X-Pipetower-Event` (`failed`, `succeeded`, `cancelled`, `back_to_normal`,
  `test`) and `X-Pipetower-Delivery` (the same for every attempt of one
  notification, so a receiver can drop a repeat).

A 2xx answer is delivered. No answer within `PIPETOWER_NOTIFY_TIMEOUT`, a
connection error, a 5xx, 408 or 429 answer is retried up to
`PIPETOWER_NOTIFY_RETRIES` times, waiting `PIPETOWER_NOTIFY_BACKOFF_SECONDS`
and twice as long each time; other answers, and an address the SSRF guard
refuses, fail at once. Redirects are not followed. Every attempt is a row of
the rule's delivery log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from pipetower.actions.models import Run, RunStatus, RunTarget, TargetStatus
from pipetower.core.outbox import outbox_enqueue
from pipetower.notifications import guard
from pipetower.notifications.models import (
    Channel,
    Event,
    Format,
    NotificationDelivery,
    NotificationRule,
    Outcome,
    Recipients,
    When,
)
from pipetower.teams.models import ROLE_RANK, Membership

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Pipetower-Signature"
TIMESTAMP_HEADER = "X-Pipetower-Timestamp"
EVENT_HEADER = "X-Pipetower-Event"
DELIVERY_HEADER = "X-Pipetower-Delivery"
USER_AGENT = "Pipetower-Notifications/1"
RETRIED_STATUSES = frozenset({408, 429})
ANSWER_READ_MAX = 4096

EVENT_WORDS = {
    Event.FAILED: "failed",
    Event.SUCCEEDED: "succeeded",
    Event.CANCELLED: "was cancelled",
    Event.BACK_TO_NORMAL: "succeeded again after a failure (back to normal)",
    Event.TEST: "test",
}


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- which rules a run triggers --------------------------------------------------------


def previous_run_failed(run: Run) -> bool:
    """Whether the same action's last run to end before `run` (cancelled ones aside) failed."""
    if run.action_id is None or run.finished_at is None:
        return False
    status = (
        Run.objects.filter(
            action_id=run.action_id,
            finished_at__isnull=False,
            finished_at__lte=run.finished_at,
            status__in=(RunStatus.SUCCEEDED, RunStatus.FAILED),
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    return status == RunStatus.FAILED


def event_for(rule: NotificationRule, run: Run, *, back_to_normal: bool) -> str | None:
    """What `rule` says about `run` (an Event value), or None when it stays silent."""
    status = run.status
    if rule.when == When.FAILURE:
        return Event.FAILED if status == RunStatus.FAILED else None
    if rule.when == When.BACK_TO_NORMAL:
        return Event.BACK_TO_NORMAL if back_to_normal else None
    if status == RunStatus.SUCCEEDED:
        return Event.BACK_TO_NORMAL if back_to_normal else Event.SUCCEEDED
    if rule.when == When.SUCCESS:
        return None
    if status == RunStatus.FAILED:
        return Event.FAILED
    return Event.CANCELLED if status == RunStatus.CANCELLED else None


def _rules_for(run: Run) -> QuerySet[NotificationRule]:
    from django.db.models import Q

    return NotificationRule.objects.filter(team_id=run.team_id, enabled=True).filter(
        Q(action__isnull=True) | Q(action_id=run.action_id)
    )


def run_notify(run_id: int) -> int:
    """Deliver what a finished run's rules ask for; how many notifications were started.

    Safe to repeat (a task delivered twice): a rule that already has a first
    attempt for this run is skipped."""
    run = Run.objects.select_related("team").filter(pk=run_id).first()
    if run is None or not run.is_finished:
        return 0
    back = run.status == RunStatus.SUCCEEDED and previous_run_failed(run)
    started = 0
    for rule in _rules_for(run).order_by("id"):
        event = event_for(rule, run, back_to_normal=back)
        if event is None:
            continue
        if NotificationDelivery.objects.filter(rule=rule, run=run, attempt=1).exists():
            continue
        try:
            notification_send(rule_id=rule.pk, run_id=run.pk, event=event, attempt=1)
        except Exception:  # one rule's trouble never stops the others
            logger.exception("Notification rule %s failed for run %s", rule.pk, run.pk)
        started += 1
    return started


# --- what is said --------------------------------------------------------------------


def _run_url(run: Run) -> str:
    return settings.BASE_URL + reverse("runs:detail", args=[run.team.slug, run.pk])


@dataclass(frozen=True)
class _Counts:
    total: int
    succeeded: int
    failed: int


def _counts(run: Run) -> _Counts:
    statuses = list(RunTarget.objects.filter(run=run).values_list("status", flat=True))
    return _Counts(
        total=len(statuses),
        succeeded=sum(1 for s in statuses if s == TargetStatus.SUCCEEDED),
        failed=sum(
            1 for s in statuses if s not in (TargetStatus.SUCCEEDED, TargetStatus.CANCELLED)
        ),
    )


def summary(rule: NotificationRule, run: Run | None, event: str) -> str:
    """One line for people: "Run #12 of deploy failed in Ops: 2 of 3 servers failed."""
    if run is None:
        return (
            f"Test notification from the rule “{rule.name}” of the team {rule.team.name} "
            "on Pipetower. Nothing ran."
        )
    counts = _counts(run)
    text = f"Run #{run.pk} of {run.action_name} {EVENT_WORDS[Event(event)]} in {rule.team.name}"
    if counts.total:
        text += f": {counts.succeeded} of {counts.total} servers succeeded"
        if counts.failed:
            text += f", {counts.failed} failed"
    return text + "."


def payload(rule: NotificationRule, run: Run | None, event: str, *, timestamp: int) -> bytes:
    """The body of a webhook delivery, in the rule's format."""
    text = summary(rule, run, event)
    if rule.format == Format.SLACK:
        if run is not None:
            text += f" <{_run_url(run)}|Open run #{run.pk}>"
        return json.dumps({"text": text}).encode()
    body: dict[str, Any] = {
        "event": event,
        "timestamp": timestamp,
        "text": text,
        "team": {"slug": rule.team.slug, "name": rule.team.name},
        "rule": {"id": rule.pk, "name": rule.name},
        "run": None,
    }
    if run is not None:
        counts = _counts(run)
        body["action"] = {"id": run.action_id, "name": run.action_name}
        body["run"] = {
            "id": run.pk,
            "status": run.status,
            "url": _run_url(run),
            "trigger": run.trigger,
            "started_by": run.started_by_text,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "servers": {
                "total": counts.total,
                "succeeded": counts.succeeded,
                "failed": counts.failed,
            },
        }
    return json.dumps(body).encode()


# --- sending -------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address the guard checked, whatever DNS says by now."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class _Result:
    outcome: str  # Outcome value, RETRYING meaning "failed, may be retried"
    message: str
    status_code: int | None = None


def _failure(exc: BaseException) -> _Result:
    """What a connection or protocol error means, for the person reading the log."""
    if isinstance(exc, ssl.SSLError):
        return _Result(Outcome.RETRYING, f"The secure connection failed: {exc.reason or exc}.")
    if isinstance(exc, http.client.HTTPException):
        return _Result(Outcome.RETRYING, f"The answer was not HTTP ({exc.__class__.__name__}).")
    if isinstance(exc, OSError):
        return _Result(Outcome.RETRYING, f"Could not connect: {exc.strerror or exc}.")
    raise exc


def _post(url: str, body: bytes, headers: dict[str, str]) -> _Result:
    timeout = float(settings.NOTIFY_TIMEOUT)
    try:
        target = guard.parse(url)
        address = guard.resolve(target)
    except (ValueError, guard.Forbidden) as exc:
        return _Result(Outcome.FAILED, f"Not sent: {exc}")
    except OSError as exc:
        return _Result(Outcome.RETRYING, f"Could not look up {guard.parse(url).host}: {exc}.")
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, address=address, timeout=timeout)
    timed_out = _Result(Outcome.RETRYING, f"No answer within {timeout:g} s (timed out).")
    # The socket timeout bounds each wait; this bounds the whole exchange, so a
    # receiver that answers a byte at a time cannot hold the worker either.
    cut = threading.Event()

    def cut_off() -> None:
        cut.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut_off)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(ANSWER_READ_MAX)
        status, reason = response.status, response.reason
    except TimeoutError:
        return timed_out
    except (http.client.HTTPException, OSError) as exc:
        return timed_out if cut.is_set() else _failure(exc)
    finally:
        timer.cancel()
        connection.close()
    if cut.is_set():
        return timed_out
    said = f"Answered {status} {reason}".rstrip() + "."
    if 200 <= status < 300:
        return _Result(Outcome.DELIVERED, said, status)
    if status >= 500 or status in RETRIED_STATUSES:
        return _Result(Outcome.RETRYING, said, status)
    if 300 <= status < 400:
        said += " Redirects are not followed: give the final URL."
    return _Result(Outcome.FAILED, said, status)


def _recipients(rule: NotificationRule) -> list[str]:
    """Team members' addresses only: never an address typed into the rule."""
    members = Membership.objects.filter(team_id=rule.team_id)
    if rule.recipients == Recipients.CREATOR:
        if rule.created_by_id is None:
            return []
        members = members.filter(user_id=rule.created_by_id)
    else:
        least = ROLE_RANK.get(rule.recipients or Recipients.ADMIN, ROLE_RANK["admin"])
        members = members.filter(role__in=[r for r, rank in ROLE_RANK.items() if rank >= least])
    return sorted(set(members.values_list("user__email", flat=True)))


def _email(rule: NotificationRule, run: Run | None, event: str) -> _Result:
    addresses = _recipients(rule)
    if not addresses:
        return _Result(Outcome.FAILED, "Nobody to mail: no team member matches the rule.")
    text = summary(rule, run, event)
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + text.split(":")[0].rstrip(".")
    body = text + "\n\n"
    if run is not None:
        body += f"Open the run: {_run_url(run)}\n\n"
    body += (
        f"You get this email because of the notification rule “{rule.name}” of the team "
        f"{rule.team.name}. Its owners and admins can change it under Notifications.\n"
    )
    sent = 0
    for address in addresses:  # each on their own: nobody sees the others' addresses
        try:
            sent += send_mail(subject, body, None, [address])
        except Exception as exc:  # smtplib's errors, OSError, a backend's own
            logger.warning("Notification email for rule %s failed: %s", rule.pk, exc)
    if sent == 0:
        return _Result(Outcome.RETRYING, "The mail server did not take the message.")
    if sent < len(addresses):
        return _Result(
            Outcome.DELIVERED, f"Mailed {sent} of {len(addresses)} members; the rest failed."
        )
    return _Result(Outcome.DELIVERED, f"Mailed {sent} member{'s' if sent != 1 else ''}.")


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, …)."""
    return float(settings.NOTIFY_BACKOFF_SECONDS) * 2 ** (attempt - 1)


def notification_send(
    *, rule_id: int, run_id: int | None, event: str, attempt: int
) -> NotificationDelivery | None:
    """One attempt to deliver: send, write the log row, queue the next attempt if any."""
    from pipetower.notifications.tasks import notification_send_task

    rule = NotificationRule.objects.select_related("team").filter(pk=rule_id).first()
    if rule is None:
        return None  # deleted since: nothing to do
    run = None
    if run_id is not None:
        run = Run.objects.select_related("team", "started_by").filter(pk=run_id).first()
        if run is None:
            return None  # purged since
    if rule.channel == Channel.EMAIL:
        result = _email(rule, run, event)
    else:
        timestamp = int(time.time())
        body = payload(rule, run, event, timestamp=timestamp)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(rule.secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_HEADER: event,
            DELIVERY_HEADER: f"{rule.pk}-{run_id or 'test'}-{event}",
        }
        result = _post(rule.url, body, headers)
    total = 1 + max(0, int(settings.NOTIFY_RETRIES))
    outcome, message, next_at = result.outcome, result.message, None
    if outcome == Outcome.RETRYING:
        if attempt < total:
            wait = backoff(attempt)
            next_at = timezone.now() + timedelta(seconds=wait)
            message += f" Attempt {attempt} of {total}; trying again in {wait:g} s."
        else:
            outcome = Outcome.FAILED
            message += f" Gave up after {total} attempt{'s' if total != 1 else ''}."
    delivery = NotificationDelivery.objects.create(
        rule=rule,
        run=run,
        event=event,
        attempt=attempt,
        outcome=outcome,
        status_code=result.status_code,
        message=message[:300],
        next_retry_at=next_at,
    )
    if next_at is not None:
        outbox_enqueue(
            notification_send_task,
            rule.pk,
            run_id,
            event,
            attempt + 1,
            subject=f"notifications.rule:{rule.pk}",
            options={"countdown": backoff(attempt)},
        )
    return delivery


def deliveries_purge(*, now: Any = None) -> int:
    """Forget delivery log rows older than PIPETOWER_NOTIFY_LOG_DAYS; how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=int(settings.NOTIFY_LOG_DAYS))
    deleted, _ = NotificationDelivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted

"""Webhook triggers: every write to them, the reads pages share, and a delivery.

Who may: whoever may run the action (operators and above) creates, changes,
deletes a webhook and makes it a new secret; viewers see the list.

A delivery (`webhook_receive`) is a POST of a JSON object to `/hooks/<token>/`.
It is checked in this order, and the first failing check answers:

1. unknown token, or the hook is disabled: 404;
2. more deliveries to this hook than its rate allows: 429 with Retry-After;
3. a body larger than the limit: 413;
4. with signatures on (the default): `X-Hub-Signature-256: sha256=<hex>`, the
   HMAC-SHA256 of the raw body with the hook's secret, missing or wrong: 401;
5. no delivery id (`X-GitHub-Delivery` or `X-Pipetower-Delivery`): 400. Every
   delivery must carry one: it is what replays are recognised by;
6. a body that is not JSON, or not a JSON object: 400;
7. the values taken from the body (plus the fixed ones) are refused by the same
   `services.run_request_check` as the run form: 422 naming the field;
8. the delivery id was already accepted within the replay window, or the team
   is scheduled for deletion (nothing starts in it): 409.

Otherwise the run starts (202 with its id and page). The delivery id is
claimed by a unique row in the same transaction that starts the run, so two
copies of a delivery arriving together start one run. Every delivery to a
known hook, accepted or refused, is kept in the hook's delivery log (the
status and a short reason; never the body or the signature) and in the
activity log, and forgotten after the replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone

from pipetower.actions import conf, params, services
from pipetower.actions.models import Action, Run, Webhook, WebhookDelivery
from pipetower.audit.services import audit_record
from pipetower.core.errors import Conflict, NotAllowed, ServiceError
from pipetower.core.ratelimit import RequestLimit
from pipetower.teams.models import Role, Team

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Pipetower-Delivery")
DELIVERY_ID_MAX = 100
PATH_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
PATH_MAX = 200
DELIVERIES_SHOWN = 20

webhook_limit = RequestLimit("webhook", conf.webhook_rate_limit)


class Replayed(Conflict):
    """A delivery id already accepted within the replay window."""

    code = "replayed"


# --- reads ---------------------------------------------------------------------------


def webhooks_for_team(*, team: Team, action: Action | None = None) -> QuerySet[Webhook]:
    hooks = Webhook.objects.filter(team=team).select_related("action")
    if action is not None:
        hooks = hooks.filter(action=action)
    return hooks.order_by("action__name", "name", "id")


def webhook_get(*, team: Team, webhook_id: Any) -> Webhook:
    """The team's webhook, or 404 for a missing one and another team's alike."""
    try:
        number = int(webhook_id)
    except (TypeError, ValueError):
        raise Http404("No such webhook.") from None
    hook = Webhook.objects.filter(team=team, pk=number).select_related("action").first()
    if hook is None:
        raise Http404("No such webhook.")
    return hook


def webhook_refusal(*, team: Team, user: Any) -> NotAllowed | None:
    """Why `user` may not create, change or delete the team's webhooks (None: they may)."""
    return services.role_refusal(
        team=team,
        actor=user,
        role=Role.OPERATOR,
        doing="manage webhooks (the people who can run actions)",
    )


def webhook_deliveries(*, webhook: Webhook, limit: int = DELIVERIES_SHOWN) -> list[WebhookDelivery]:
    return list(webhook.deliveries.select_related("run").order_by("-received_at", "-id")[:limit])


def webhook_path(webhook: Webhook) -> str:
    return reverse("hooks:receive", args=[webhook.token])


# --- writes --------------------------------------------------------------------------


def _name_clean(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ServiceError("Give the webhook a name.", field="name")
    if len(name) > 100:
        raise ServiceError("The name is too long (at most 100 characters).", field="name")
    return name


def mapping_clean(*, action: Action, mapping: Any) -> dict[str, str]:
    """{parameter name: dotted path in the body}, each name one of the action's."""
    if mapping in (None, ""):
        return {}
    if not isinstance(mapping, Mapping):
        raise ServiceError(
            "The mapping must pair parameter names with paths in the body.", field="mapping"
        )
    names = [spec["name"] for spec in action.parameters]
    clean: dict[str, str] = {}
    for name, raw_path in mapping.items():
        if name not in names:
            takes = ", ".join(names) if names else "no parameters"
            raise ServiceError(
                f"Unknown parameter {str(name)[:40]!r} in the mapping. This action takes: {takes}.",
                field="mapping",
            )
        path = str(raw_path or "").strip()
        if not path:
            continue
        if len(path) > PATH_MAX or not PATH_RE.match(path):
            raise ServiceError(
                f"{path[:60]!r} is not a path in the body: write field names joined by dots, "
                "such as ref or head_commit.id.",
                field="mapping",
            )
        clean[name] = path
    return clean


@dataclass(frozen=True)
class _Checked:
    plain: dict[str, Any]
    secrets: dict[str, str]
    servers: list[Any]


def _check(
    *,
    action: Action,
    server_ids: Sequence[Any],
    tags: Sequence[str],
    values: Mapping[str, Any],
    mapping: Mapping[str, str],
) -> _Checked:
    """The targets and fixed values, checked as a manual run's; parameters taken from
    the body are checked when a delivery arrives."""
    both = sorted(set(values) & set(mapping))
    if both:
        raise ServiceError(
            f"Parameter {both[0]} has a fixed value and is taken from the body: choose one.",
            field=both[0],
        )
    fixed_specs = [spec for spec in action.parameters if spec["name"] not in mapping]
    try:
        checked = services.run_request_check(
            action=action, server_ids=server_ids, tags=tags, values=values
        )
        servers = checked.servers
    except params.InvalidValues as exc:
        # The targets passed (they are checked first); only problems of values that
        # a delivery supplies are left for the delivery.
        own = [p for p in exc.problems if p.field not in mapping]
        if own:
            raise params.InvalidValues(own) from None
        # Ask again without parameters (an unsaved copy of the action that takes
        # none) for the servers the targets resolve to.
        servers = services.run_request_check(
            action=Action(team=action.team, parameters=[]),
            server_ids=server_ids,
            tags=tags,
            values={},
        ).servers
    plain, secret_values = params.values_resolve(
        fixed_specs, action.secret_default_values(), values
    )
    wanted = {int(i) for i in server_ids}
    return _Checked(
        plain=plain, secrets=secret_values, servers=[s for s in servers if s.pk in wanted]
    )


def _audit_data(hook: Webhook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "action": hook.action.name,
        "enabled": hook.enabled,
        "require_signature": hook.require_signature,
        "tags": list(hook.tags),
        "mapping": dict(hook.mapping),
        "params": {**hook.params, **dict.fromkeys(hook.secret_param_values(), "••••••")},
    }


def webhook_create(
    *,
    action: Action,
    actor: Any,
    name: str,
    server_ids: Sequence[Any] = (),
    tags: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    mapping: Mapping[str, str] | None = None,
    require_signature: bool = True,
    enabled: bool = True,
    request: HttpRequest | None = None,
) -> tuple[Webhook, str]:
    """A webhook that runs `action` on these targets with these values and the ones
    mapped from the body. Returns the hook and its secret (shown once)."""
    team = action.team
    if refusal := webhook_refusal(team=team, user=actor):
        raise refusal
    name = _name_clean(name)
    clean_mapping = mapping_clean(action=action, mapping=mapping or {})
    checked = _check(
        action=action,
        server_ids=server_ids,
        tags=tags,
        values=values or {},
        mapping=clean_mapping,
    )
    secret = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            hook = Webhook(
                team=team,
                action=action,
                name=name,
                token=secrets.token_urlsafe(32),
                secret=secret,
                require_signature=bool(require_signature),
                enabled=bool(enabled),
                tags=services._tag_names(tags),
                params=checked.plain,
                secret_params=json.dumps(checked.secrets) if checked.secrets else "",
                mapping=clean_mapping,
                created_by=actor,
            )
            hook.save()
            hook.servers.set(checked.servers)
            audit_record(
                actor=actor,
                team=team,
                verb="webhook.created",
                target=hook,
                request=request,
                data=_audit_data(hook),
            )
    except IntegrityError:
        raise Conflict(f"This action already has a webhook named {name!r}.", field="name") from None
    return hook, secret


UPDATABLE = frozenset(
    {
        "name",
        "server_ids",
        "tags",
        "values",
        "keep_secrets",
        "mapping",
        "require_signature",
        "enabled",
    }
)


def _lock(hook: Webhook) -> Webhook:
    locked = (
        Webhook.objects.select_for_update()
        .select_related("action", "team")
        .filter(pk=hook.pk)
        .first()
    )
    if locked is None:
        raise Conflict("This webhook has been deleted.")
    return locked


def webhook_update(
    *, webhook: Webhook, actor: Any, request: HttpRequest | None = None, **changes: Any
) -> Webhook:
    """Change any of webhook_create's fields; the rest stay. `values` replaces the
    fixed values as a whole; `keep_secrets` names stored secret values to keep.
    The URL and the secret stay the same (see webhook_secret_regenerate)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ServiceError(f"Unknown field {sorted(unknown)[0]}.")
    with transaction.atomic():
        locked = _lock(webhook)
        if refusal := webhook_refusal(team=locked.team, user=actor):
            raise refusal
        action = locked.action
        if "name" in changes:
            locked.name = _name_clean(changes["name"])
        mapping = (
            mapping_clean(action=action, mapping=changes["mapping"])
            if "mapping" in changes
            else dict(locked.mapping)
        )
        server_ids = (
            list(changes["server_ids"])
            if "server_ids" in changes
            else list(locked.servers.values_list("pk", flat=True))
        )
        tags = list(changes["tags"]) if "tags" in changes else list(locked.tags)
        stored_secrets = locked.secret_param_values()
        if "values" in changes:
            values = dict(changes["values"] or {})
            for name in changes.get("keep_secrets") or ():
                if name not in values and name in stored_secrets:
                    values[name] = stored_secrets[name]
        else:
            values = {**locked.params, **stored_secrets}
        checked = _check(
            action=action, server_ids=server_ids, tags=tags, values=values, mapping=mapping
        )
        locked.mapping = mapping
        locked.tags = services._tag_names(tags)
        locked.params = checked.plain
        locked.secret_params = json.dumps(checked.secrets) if checked.secrets else ""
        if "require_signature" in changes:
            locked.require_signature = bool(changes["require_signature"])
        if "enabled" in changes:
            locked.enabled = bool(changes["enabled"])
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise Conflict(
                f"This action already has a webhook named {locked.name!r}.", field="name"
            ) from None
        locked.servers.set(checked.servers)
        audit_record(
            actor=actor,
            team=locked.team,
            verb="webhook.updated",
            target=locked,
            request=request,
            data=_audit_data(locked),
        )
    return locked


def webhook_secret_regenerate(
    *, webhook: Webhook, actor: Any, request: HttpRequest | None = None
) -> tuple[Webhook, str]:
    """A new secret (returned, shown once); the old one stops working at once."""
    with transaction.atomic():
        locked = _lock(webhook)
        if refusal := webhook_refusal(team=locked.team, user=actor):
            raise refusal
        secret = secrets.token_urlsafe(32)
        locked.secret = secret
        locked.save(update_fields=["secret", "updated_at"])
        audit_record(
            actor=actor,
            team=locked.team,
            verb="webhook.secret_regenerated",
            target=locked,
            request=request,
            data={"name": locked.name, "action": locked.action.name},
        )
    return locked, secret


def webhook_delete(*, webhook: Webhook, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete the webhook: its URL answers 404 from now on; its runs stay, named."""
    with transaction.atomic():
        locked = (
            Webhook.objects.select_for_update()
            .select_related("action", "team")
            .filter(pk=webhook.pk)
            .first()
        )
        if locked is None:
            return
        if refusal := webhook_refusal(team=locked.team, user=actor):
            raise refusal
        audit_record(
            actor=actor,
            team=locked.team,
            verb="webhook.deleted",
            target=locked,
            request=request,
            data=_audit_data(locked),
        )
        locked.delete()


def webhook_deliveries_purge(*, now: datetime | None = None) -> int:
    """Forget deliveries older than the replay window; how many were deleted."""
    cutoff = (now or timezone.now()) - conf.webhook_replay_window()
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


# --- a delivery ----------------------------------------------------------------------


@dataclass
class Answer:
    """What to answer a delivery: the HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def signature_for(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of `body` made with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _refuse(status: int, message: str, *, code: str, field_name: str | None = None) -> Answer:
    error: dict[str, Any] = {"code": code, "message": message}
    if field_name:
        error["field"] = field_name
    return Answer(status, {"error": error})


def _at_path(body: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    current: Any = body
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _mapped_values(hook: Webhook, body: Mapping[str, Any]) -> dict[str, Any]:
    """The values the mapping takes from the body; a missing path gives no value."""
    values: dict[str, Any] = {}
    for name, path in hook.mapping.items():
        found, value = _at_path(body, path)
        if not found or value is None:
            continue
        if isinstance(value, dict | list):
            raise ServiceError(
                f"Parameter {name} takes {path!r} from the body, which is not a single value "
                "(text, number or true/false).",
                field=name,
            )
        values[name] = value
    return values


def _log_refusal(hook: Webhook, answer: Answer, *, delivery_id: str, ip: str | None) -> None:
    """Keep a refused delivery in the hook's log and the activity log: the status and
    the reason, never the body or the signature."""
    message = str(answer.body["error"]["message"])
    WebhookDelivery.objects.create(
        webhook=hook,
        delivery_id=delivery_id[:DELIVERY_ID_MAX],
        status=answer.status,
        message=message[:300],
    )
    audit_record(
        actor=None,
        team=hook.team,
        verb="webhook.delivery_refused",
        target=hook,
        ip=ip,
        data={
            "name": hook.name,
            "action": hook.action.name,
            "status": answer.status,
            "delivery_id": delivery_id[:DELIVERY_ID_MAX],
            "message": message,
        },
    )


def webhook_receive(
    *,
    token: str,
    body: bytes | None,
    size: int,
    headers: Mapping[str, str],
    ip: str | None = None,
) -> Answer:
    """Check one delivery (see the module's docstring for the order) and start the
    run it asks for. `body` is None when it was not read because `size` (its
    declared length) is over the limit."""
    hook = (
        Webhook.objects.filter(token=str(token)[:64]).select_related("action", "team").first()
        if token
        else None
    )
    if hook is None:
        return _refuse(404, "No webhook has this URL.", code="not_found")
    delivery_id = _header(headers, DELIVERY_HEADERS[0]) or _header(headers, DELIVERY_HEADERS[1])
    delivery_id = delivery_id.strip()

    def refused(answer: Answer) -> Answer:
        _log_refusal(hook, answer, delivery_id=delivery_id, ip=ip)
        return answer

    if not hook.enabled:
        return refused(_refuse(404, "This webhook is disabled.", code="not_found"))
    if wait := webhook_limit.check(str(hook.pk)):
        answer = _refuse(
            429,
            f"Too many deliveries to this webhook; try again in {wait} seconds.",
            code="rate_limited",
        )
        answer.headers["Retry-After"] = str(wait)
        return refused(answer)
    limit = conf.webhook_body_max_bytes()
    if body is None or size > limit or len(body) > limit:
        return refused(
            _refuse(413, f"The body is larger than the limit of {limit:,} bytes.", code="too_large")
        )
    if hook.require_signature:
        given = _header(headers, SIGNATURE_HEADER).strip()
        if not given:
            return refused(
                _refuse(
                    401,
                    f"The {SIGNATURE_HEADER} header is missing: sign the body with the "
                    "webhook's secret.",
                    code="signature_missing",
                )
            )
        expected = signature_for(hook.secret, body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return refused(
                _refuse(
                    401,
                    f"The {SIGNATURE_HEADER} signature does not match the body.",
                    code="signature_mismatch",
                )
            )
    if not delivery_id:
        return refused(
            _refuse(
                400,
                f"Give each delivery an id in the {DELIVERY_HEADERS[0]} or "
                f"{DELIVERY_HEADERS[1]} header; a repeated id is refused.",
                code="delivery_id_missing",
            )
        )
    if len(delivery_id) > DELIVERY_ID_MAX:
        return refused(
            _refuse(
                400,
                f"The delivery id is too long (at most {DELIVERY_ID_MAX} characters).",
                code="delivery_id_invalid",
            )
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return refused(_refuse(400, "The body is not JSON.", code="not_json"))
    if not isinstance(payload, dict):
        return refused(
            _refuse(400, "The body must be a JSON object ({...}).", code="not_an_object")
        )
    try:
        values = {**hook.params, **hook.secret_param_values(), **_mapped_values(hook, payload)}
        with transaction.atomic():
            try:
                with transaction.atomic():
                    claim = WebhookDelivery.objects.create(
                        webhook=hook,
                        delivery_id=delivery_id,
                        accepted_id=delivery_id,
                        status=202,
                    )
            except IntegrityError:
                raise Replayed(
                    f"Delivery {delivery_id!r} was already accepted; a replay starts no run."
                ) from None
            run = services.run_start(
                action=hook.action,
                actor=None,
                server_ids=list(hook.servers.values_list("pk", flat=True)),
                tags=list(hook.tags),
                values=values,
                trigger=Run.Trigger.WEBHOOK,
                webhook=hook,
            )
            claim.run = run
            claim.save(update_fields=["run"])
            answer = Answer(
                202,
                {
                    "run_id": run.pk,
                    "url": reverse("runs:detail", args=[hook.team.slug, run.pk]),
                },
            )
            audit_record(
                actor=None,
                team=hook.team,
                verb="webhook.delivery_accepted",
                target=hook,
                ip=ip,
                data={
                    "name": hook.name,
                    "action": hook.action.name,
                    "status": 202,
                    "delivery_id": delivery_id,
                    "run": run.pk,
                },
            )
            return answer
    except ServiceError as exc:
        return refused(
            _refuse(
                422 if exc.status in (400, 404) else exc.status,
                exc.message,
                code=exc.code,
                field_name=exc.field,
            )
        )

"""The webhook receiver (`/hooks/<token>/`) and the pages that manage webhooks.

The receiver is answered without a session or CSRF token: the token in the
URL finds the hook, and its signature and delivery id are checked by
`webhooks.webhook_receive`. Answers are JSON.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pipetower.actions import conf, selectors, webhooks
from pipetower.actions.forms import WebhookForm
from pipetower.actions.models import Action, Webhook
from pipetower.core.errors import ServiceError
from pipetower.core.http import client_ip
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view


@csrf_exempt
@never_cache
@require_POST
def webhook_receive(request: HttpRequest, token: str) -> HttpResponse:
    limit = conf.webhook_body_max_bytes()
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    # A body over the limit is not read at all; one under it is read up to one
    # byte past the limit, so a wrong Content-Length cannot make it larger.
    body = None if size > limit else request.read(limit + 1)
    answer = webhooks.webhook_receive(
        token=token,
        body=body,
        size=size,
        headers=request.headers,
        ip=client_ip(request),
    )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


# --- pages ---------------------------------------------------------------------------

WEBHOOKS_PER_PAGE = 25


def _can_manage(request: HttpRequest) -> bool:
    return webhooks.webhook_refusal(team=request.team, user=request.user) is None  # type: ignore[attr-defined]


def _secret_page(
    request: HttpRequest, hook: Webhook, secret: str, *, created: bool
) -> HttpResponse:
    """The one page that shows the secret; it is not stored anywhere it could be read again."""
    return render(
        request,
        "actions/webhook_secret.html",
        {
            "webhook": hook,
            "secret": secret,
            "created": created,
            "hook_url": request.build_absolute_uri(webhooks.webhook_path(hook)),
        },
        status=201 if created else 200,
    )


@team_view()
def webhook_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    page = Paginator(webhooks.webhooks_for_team(team=team), WEBHOOKS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "actions/webhook_list.html",
        {"page": page, "hooks": page.object_list, "can_manage": _can_manage(request)},
    )


@team_view()
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    hook = webhooks.webhook_get(team=team, webhook_id=webhook_id)
    can_manage = _can_manage(request)
    return render(
        request,
        "actions/webhook_detail.html",
        {
            "webhook": hook,
            "servers": hook.servers.order_by("name"),
            "deliveries": webhooks.webhook_deliveries(webhook=hook),
            "can_manage": can_manage,
            # Without signatures the URL alone starts runs: shown to those who manage it.
            "hook_url": (
                request.build_absolute_uri(webhooks.webhook_path(hook)) if can_manage else ""
            ),
            "replay_hours": int(conf.webhook_replay_window().total_seconds() // 3600),
        },
    )


def _webhook_form_page(request: HttpRequest, action: Action, hook: Webhook | None) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        form = WebhookForm(request.POST, action=action, webhook=hook)
        if form.is_valid():
            fields = form.service_fields()
            try:
                if hook is None:
                    hook, secret = webhooks.webhook_create(
                        action=action, actor=request.user, request=request, **fields
                    )
                    return _secret_page(request, hook, secret, created=True)
                hook = webhooks.webhook_update(
                    webhook=hook, actor=request.user, request=request, **fields
                )
                messages.success(request, f"Webhook “{hook.name}” saved.")
                return redirect("webhooks:detail", team.slug, hook.pk)
            except ServiceError as exc:
                form.add_service_error(exc)
        status = 400
        form.mark_invalid()
    else:
        form = WebhookForm(action=action, webhook=hook)
    return render(
        request,
        "actions/webhook_form.html",
        {"action": action, "form": form, "webhook": hook},
        status=status,
    )


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def webhook_create(request: HttpRequest, action_id: int) -> HttpResponse:
    action = selectors.action_get(team=request.team, action_id=action_id)  # type: ignore[attr-defined]
    return _webhook_form_page(request, action, None)


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def webhook_edit(request: HttpRequest, webhook_id: int) -> HttpResponse:
    hook = webhooks.webhook_get(team=request.team, webhook_id=webhook_id)  # type: ignore[attr-defined]
    return _webhook_form_page(request, hook.action, hook)


@require_POST
@team_view(roles={"POST": Role.OPERATOR})
def webhook_secret(request: HttpRequest, webhook_id: int) -> HttpResponse:
    hook = webhooks.webhook_get(team=request.team, webhook_id=webhook_id)  # type: ignore[attr-defined]
    hook, secret = webhooks.webhook_secret_regenerate(
        webhook=hook, actor=request.user, request=request
    )
    return _secret_page(request, hook, secret, created=False)


@team_view(roles={"GET": Role.OPERATOR, "POST": Role.OPERATOR})
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    hook = webhooks.webhook_get(team=team, webhook_id=webhook_id)
    if request.method == "POST":
        name = hook.name
        webhooks.webhook_delete(webhook=hook, actor=request.user, request=request)
        messages.success(request, f"Webhook “{name}” deleted. Its runs stay in the history.")
        return redirect("webhooks:list", team.slug)
    return render(request, "actions/webhook_delete.html", {"webhook": hook})

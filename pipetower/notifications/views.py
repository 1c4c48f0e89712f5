"""The team's notification pages: the rules, one rule with its delivery log, the form.

Every member sees them; owners and admins manage (`services.rule_refusal`,
the same check the services make).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pipetower.actions import selectors as action_selectors
from pipetower.core.errors import ServiceError
from pipetower.notifications import services
from pipetower.notifications.forms import NotificationRuleForm
from pipetower.notifications.models import NotificationRule
from pipetower.teams.models import Role
from pipetower.teams.permissions import team_view

RULES_PER_PAGE = 25


def _can_manage(request: HttpRequest) -> bool:
    return services.rule_refusal(team=request.team, user=request.user) is None  # type: ignore[attr-defined]


def _secret_page(
    request: HttpRequest, rule: NotificationRule, secret: str, *, created: bool
) -> HttpResponse:
    """The one page that shows a webhook rule's signing secret."""
    return render(
        request,
        "notifications/rule_secret.html",
        {"rule": rule, "secret": secret, "created": created},
        status=201 if created else 200,
    )


@team_view()
def rule_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    action = None
    if request.GET.get("action"):
        action = action_selectors.action_get(team=team, action_id=request.GET["action"])
    page = Paginator(services.rules_for_team(team=team, action=action), RULES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    can_manage = _can_manage(request)
    return render(
        request,
        "notifications/rule_list.html",
        {
            "page": page,
            "rules": [
                (rule, services.url_shown(rule.url, can_manage=can_manage))
                for rule in page.object_list
            ],
            "action": action,
            "can_manage": can_manage,
        },
    )


@team_view()
def rule_detail(request: HttpRequest, rule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    rule = services.rule_get(team=team, rule_id=rule_id)
    can_manage = _can_manage(request)
    page = Paginator(
        services.deliveries_for_rule(rule=rule).select_related("run"),
        services.DELIVERIES_PER_PAGE,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/rule_detail.html",
        {
            "rule": rule,
            "url": services.url_shown(rule.url, can_manage=can_manage),
            "page": page,
            "deliveries": page.object_list,
            "can_manage": can_manage,
        },
    )


def _form_page(request: HttpRequest, rule: NotificationRule | None) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        form = NotificationRuleForm(request.POST, team=team, rule=rule)
        if form.is_valid():
            fields = form.service_fields()
            try:
                if rule is None:
                    rule, secret = services.notification_rule_create(
                        team=team, actor=request.user, request=request, **fields
                    )
                    if secret:
                        return _secret_page(request, rule, secret, created=True)
                    messages.success(request, f"Notification rule “{rule.name}” created.")
                    return redirect("notifications:detail", team.slug, rule.pk)
                rule, secret = services.notification_rule_update(
                    rule=rule, actor=request.user, request=request, **fields
                )
                if secret:
                    return _secret_page(request, rule, secret, created=True)
                messages.success(request, f"Notification rule “{rule.name}” saved.")
                return redirect("notifications:detail", team.slug, rule.pk)
            except ServiceError as exc:
                form.add_service_error(exc)
        status = 400
        form.mark_invalid()
    else:
        initial = {}
        if rule is None and request.GET.get("action"):
            initial["action"] = action_selectors.action_get(
                team=team, action_id=request.GET["action"]
            ).pk
        form = NotificationRuleForm(team=team, rule=rule, initial=initial or None)
    return render(
        request, "notifications/rule_form.html", {"form": form, "rule": rule}, status=status
    )


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def rule_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, None)


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = services.rule_get(team=request.team, rule_id=rule_id)  # type: ignore[attr-defined]
    return _form_page(request, rule)


@team_view(roles={"GET": Role.ADMIN, "POST": Role.ADMIN})
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    rule = services.rule_get(team=team, rule_id=rule_id)
    if request.method == "POST":
        name = rule.name
        services.notification_rule_delete(rule=rule, actor=request.user, request=request)
        messages.success(request, f"Notification rule “{name}” deleted.")
        return redirect("notifications:list", team.slug)
    return render(request, "notifications/rule_delete.html", {"rule": rule})


@require_POST
@team_view(roles={"POST": Role.ADMIN})
def rule_test(request: HttpRequest, rule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    rule = services.rule_get(team=team, rule_id=rule_id)
    services.notification_test_send(rule=rule, actor=request.user, request=request)
    messages.success(
        request,
        "Test notification queued. Its result appears in the delivery log below "
        "(reload the page in a few seconds).",
    )
    return redirect("notifications:detail", team.slug, rule.pk)


@require_POST
@team_view(roles={"POST": Role.ADMIN})
def rule_secret(request: HttpRequest, rule_id: int) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    rule = services.rule_get(team=team, rule_id=rule_id)
    try:
        rule, secret = services.notification_rule_secret_regenerate(
            rule=rule, actor=request.user, request=request
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("notifications:detail", team.slug, rule.pk)
    return _secret_page(request, rule, secret, created=False)

"""`{% experiment "name" %}`, `{% cookie_banner %}` and `{% analytics_snippet %}`."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.http import HttpRequest

from pipetower.analytics.cookies import ANALYTICS, choices_of, cookie_allowed, scripts_allowed
from pipetower.analytics.experiments import EXPERIMENTS, assignments_for, variant_for
from pipetower.analytics.scripts import configured_scripts
from pipetower.analytics.services import experiment_exposure_record

register = template.Library()


@register.simple_tag(takes_context=True)
def experiment(context: template.Context, name: str) -> str:
    """The variant of experiment `name` this visitor sees.

    `{% experiment "onboarding" %}` writes that variant's text (the texts live
    with the experiment in `pipetower.analytics.experiments`);
    `{% experiment "onboarding" as text %}` keeps it in a variable.
    Without consent to A/B testing cookies it is always the control, and
    nothing is counted.
    """
    request: HttpRequest | None = context.get("request")
    variant = variant_for(request, name)
    if request is not None and assignments_for(request) is not None:
        shown: set[str] = getattr(request, "_pt_ab_shown", set())
        if name not in shown:
            experiment_exposure_record(experiment=name, variant=variant)
            shown.add(name)
            request._pt_ab_shown = shown  # type: ignore[attr-defined]
    return EXPERIMENTS[name].variants[variant]


@register.inclusion_tag("analytics/banner.html", takes_context=True)
def cookie_banner(context: template.Context) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    show = (
        request is not None
        and not choices_of(request).decided
        and not request.path.startswith("/cookies/")
    )
    return {
        "show": show,
        "csrf_token": context.get("csrf_token"),
        "scripts": configured_scripts() if show else [],
    }


@register.inclusion_tag("analytics/snippet.html", takes_context=True)
def analytics_snippet(context: template.Context) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    url = getattr(settings, "ANALYTICS_SNIPPET_URL", "")
    allowed = bool(url) and request is not None and cookie_allowed(request, ANALYTICS)
    return {
        "snippet_url": url if allowed else "",
        "scripts": scripts_allowed(request) if request is not None else [],
    }

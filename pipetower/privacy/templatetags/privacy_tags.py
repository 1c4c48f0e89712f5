"""`{% policy_banner %}`: the banner about a significant policy change, on every page."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from pipetower.privacy.policy import policy_banner_for

register = template.Library()


@register.inclusion_tag("privacy/_policy_banner.html", takes_context=True)
def policy_banner(context: template.Context) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    # Pages answered before authentication ran (an unreadable request) have no user.
    user = getattr(request, "user", None)
    banner = policy_banner_for(user=user) if user is not None else None
    return {
        "banner": banner,
        "next": request.get_full_path() if request is not None else "",
        "csrf_token": context.get("csrf_token"),
    }

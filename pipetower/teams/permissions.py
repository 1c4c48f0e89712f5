"""Resolve the team once per request and check the role the HTTP method needs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from pipetower.teams.models import Role
from pipetower.teams.selectors import membership_get

View = Callable[..., HttpResponse]


def team_view(roles: dict[str, Role] | None = None) -> Callable[[View], View]:
    """Decorate a view taking `team_slug`: sets `request.team` and `request.membership`.

    `roles` maps HTTP methods to the least role they need; GET/HEAD default to
    viewer, other methods to admin.
    """
    needed = {"GET": Role.VIEWER, "HEAD": Role.VIEWER, **(roles or {})}

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, team_slug: str, *args: Any, **kwargs: Any) -> Any:
            membership = membership_get(user=request.user, team_slug=team_slug)
            role = needed.get(request.method or "GET", Role.ADMIN)
            if not membership.role_enum.at_least(role):
                raise PermissionDenied(f"This needs the {role.label} role or higher.")
            request.team = membership.team  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from pipetower.teams.selectors import teams_for_user


class CurrentTeamMiddleware:
    """Makes the signed-in user's teams available to the team switcher."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.user_teams = teams_for_user(user=request.user)  # type: ignore[attr-defined]
        return self.get_response(request)

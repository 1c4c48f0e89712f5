from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

LAST_TEAM_SESSION_KEY = "pipetower_last_team"


def _nav_team(request: HttpRequest, current: Any, teams: Any) -> Any:
    """The team the navigation shows: the page's team, else the last one visited, so
    account pages keep the team switcher and the team's links."""
    session = getattr(request, "session", None)
    if session is None:
        return current
    if current is not None:
        if session.get(LAST_TEAM_SESSION_KEY) != current.pk:
            session[LAST_TEAM_SESSION_KEY] = current.pk
        return current
    last = session.get(LAST_TEAM_SESSION_KEY)
    return next((team for team in teams if team.pk == last), None) if last else None


def pipetower(request: HttpRequest) -> dict[str, Any]:
    current = getattr(request, "team", None)
    teams = getattr(request, "user_teams", [])
    nav_team = _nav_team(request, current, teams)

    def approvals_waiting() -> int:
        """Read from the switcher's list (already loaded by then): no query of its own."""
        if nav_team is None:
            return 0
        found = next((t for t in teams if t.pk == nav_team.pk), None)
        return int(getattr(found, "approvals_waiting", 0) or 0)

    return {
        "nav_approvals_waiting": approvals_waiting,
        "signup_mode": settings.SIGNUP_MODE,
        "current_team": current,
        "nav_team": nav_team,
        "user_teams": teams,
    }

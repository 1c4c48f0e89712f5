from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def pipetower(request: HttpRequest) -> dict[str, Any]:
    return {
        "signup_mode": settings.SIGNUP_MODE,
        "current_team": getattr(request, "team", None),
        "user_teams": getattr(request, "user_teams", []),
    }

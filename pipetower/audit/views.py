from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from pipetower.teams.permissions import team_view


@team_view()
def activity(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/activity.html")

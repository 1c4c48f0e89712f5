from __future__ import annotations

from collections.abc import Callable

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse

from pipetower.teams.selectors import teams_for_user


class CurrentTeamMiddleware:
    """Makes the signed-in user's teams available to the team switcher."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from pipetower.actions.models import ApprovalRequest

        # Each team's waiting approval requests, for the "Approvals" link: in the same
        # query as the switcher's list, so no page pays an extra query for it.
        waiting = (
            ApprovalRequest.objects.filter(team=OuterRef("pk"), decision="")
            .order_by()
            .values("team")
            .annotate(n=Count("pk"))
            .values("n")
        )
        request.user_teams = teams_for_user(user=request.user).annotate(  # type: ignore[attr-defined]
            approvals_waiting=Coalesce(Subquery(waiting, output_field=IntegerField()), Value(0))
        )
        return self.get_response(request)

"""The staff back office for teams: which teams exist, who is in them with what
role, and whether they granted Pipetower support access.

Nothing here adds, changes or removes a team, a member or an invitation: staff
cannot make themselves members of a customer's team. Changes go through the
team's own pages (`teams.services`), by the team's own owners and admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from pipetower.privacy.models import SupportGrant
from pipetower.privacy.staff_admin import TeamContentAdmin
from pipetower.teams.models import Invitation, Membership, Team


@admin.register(Team)
class TeamAdmin(TeamContentAdmin):
    # The team's name tells staff which customer they are talking to.
    shown_text_fields = ("name", "slug")

    def get_list_display(self, request):
        return ["id", "name", "slug", "created_at", "created_by", "support_access"]

    def get_list_display_links(self, request, list_display):
        return ["id", "name"]

    def get_search_fields(self, request):
        return ["name", "slug"]

    def get_fields(self, request, obj=None):
        return [*super().get_fields(request, obj), "support_access"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "support_access"]

    @admin.display(description="Support access")
    def support_access(self, obj: Team) -> Any:
        grant = (
            SupportGrant.objects.filter(
                team=obj, revoked_at__isnull=True, expires_at__gt=timezone.now()
            )
            .order_by("-expires_at")
            .first()
        )
        if grant is None:
            return "none"
        return format_html(
            '{} until {} UTC: <a href="{}">open the team</a>',
            grant.get_scope_display(),
            f"{grant.expires_at:%Y-%m-%d %H:%M}",
            reverse("teams:detail", kwargs={"team_slug": obj.slug}),
        )


@admin.register(Membership)
class MembershipAdmin(TeamContentAdmin):
    list_filter = ("role",)
    list_select_related = ("user", "team")

    def get_search_fields(self, request):
        return ["team__name", "team__slug", "user__email"]


@admin.register(Invitation)
class InvitationAdmin(TeamContentAdmin):
    """Who a team invited is the team's business: no addresses here, no token hash."""

    list_filter = ("role",)
    list_select_related = ("team",)

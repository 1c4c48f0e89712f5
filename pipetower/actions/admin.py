"""The staff back office for actions and runs: kinds, numbers, states and dates only.

Scripts, parameters, names and output are the team's content; staff see them
only through the team's pages under its support access (privacy.support_access)."""

from __future__ import annotations

from django.contrib import admin

from pipetower.actions.models import Action, ApprovalRequest, Run
from pipetower.privacy.staff_admin import TeamContentAdmin


@admin.register(Action)
class ActionAdmin(TeamContentAdmin):
    list_filter = ("team",)


@admin.register(Run)
class RunAdmin(TeamContentAdmin):
    list_filter = ("status", "trigger")


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(TeamContentAdmin):
    """Decisions and dates only: who asked, who decided and the reason are the team's.
    Deciding is the team's own (actions/approvals.py), never staff's."""

    list_filter = ("decision",)

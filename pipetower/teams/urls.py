from django.urls import path

from pipetower.teams import views

app_name = "teams"
urlpatterns = [
    path("", views.team_list, name="list"),
    path("new/", views.team_create, name="create"),
    path("join/<str:token>/", views.join, name="join"),
    path("<slug:team_slug>/", views.team_detail, name="detail"),
    path("<slug:team_slug>/settings/", views.team_settings, name="settings"),
    path("<slug:team_slug>/leave/", views.team_leave, name="leave"),
    path("<slug:team_slug>/delete/", views.team_delete, name="delete"),
    path("<slug:team_slug>/delete/cancel/", views.team_delete_cancel, name="delete_cancel"),
    path("<slug:team_slug>/members/", views.members, name="members"),
    path(
        "<slug:team_slug>/members/<int:membership_id>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "<slug:team_slug>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "<slug:team_slug>/invitations/<int:invitation_id>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "<slug:team_slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
]

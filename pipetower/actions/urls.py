from django.urls import path

from pipetower.actions import approval_views, history_views, views, webhook_views

app_name = "actions"
urlpatterns = [
    path("", views.action_list, name="list"),
    path("new/", views.action_create, name="create"),
    path("<int:action_id>/", views.action_detail, name="detail"),
    path("<int:action_id>/edit/", views.action_edit, name="edit"),
    path("<int:action_id>/delete/", views.action_delete, name="delete"),
    path("<int:action_id>/run/", views.action_run, name="run"),
    path("<int:action_id>/schedules/new/", views.schedule_create, name="schedule_create"),
    path("<int:action_id>/webhooks/new/", webhook_views.webhook_create, name="webhook_create"),
    path("<int:action_id>/history/", history_views.action_history, name="history"),
    path("<int:action_id>/versions/<int:n>/", history_views.action_version, name="version"),
    path(
        "<int:action_id>/versions/<int:n>/restore/",
        history_views.action_version_restore,
        name="version_restore",
    ),
]

# Mounted at teams/<team_slug>/runs/ (config/urls.py), namespace "runs".
run_urlpatterns = [
    path("", views.run_list, name="list"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/live", views.run_live, name="live"),
    path("<int:run_id>/output.txt", views.run_download, name="download"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/rerun/", views.run_rerun, name="rerun"),
    path("<int:run_id>/again/", views.run_again, name="again"),
    path("<int:run_id>/approve/", approval_views.run_approve, name="approve"),
    path("<int:run_id>/deny/", approval_views.run_deny, name="deny"),
    path("<int:run_id>/targets/<int:target_id>/chunks", views.run_target_chunks, name="chunks"),
    path(
        "<int:run_id>/targets/<int:target_id>/output.txt",
        views.run_target_download,
        name="target_download",
    ),
]
run_urls = (run_urlpatterns, "runs")

# Mounted at teams/<team_slug>/approvals/ (config/urls.py), namespace "approvals".
approval_urlpatterns = [
    path("", approval_views.approval_list, name="list"),
]
approval_urls = (approval_urlpatterns, "approvals")

# Mounted at teams/<team_slug>/schedules/ (config/urls.py), namespace "schedules".
schedule_urlpatterns = [
    path("", views.schedule_list, name="list"),
    path("<int:schedule_id>/edit/", views.schedule_edit, name="edit"),
    path("<int:schedule_id>/toggle/", views.schedule_toggle, name="toggle"),
    path("<int:schedule_id>/delete/", views.schedule_delete, name="delete"),
]
schedule_urls = (schedule_urlpatterns, "schedules")

# Mounted at teams/<team_slug>/webhooks/ (config/urls.py), namespace "webhooks".
webhook_urlpatterns = [
    path("", webhook_views.webhook_list, name="list"),
    path("<int:webhook_id>/", webhook_views.webhook_detail, name="detail"),
    path("<int:webhook_id>/edit/", webhook_views.webhook_edit, name="edit"),
    path("<int:webhook_id>/secret/", webhook_views.webhook_secret, name="secret"),
    path("<int:webhook_id>/delete/", webhook_views.webhook_delete, name="delete"),
]
webhook_urls = (webhook_urlpatterns, "webhooks")

# Mounted at hooks/ (config/urls.py), namespace "hooks": deliveries, no session.
hook_urlpatterns = [
    path("<str:token>/", webhook_views.webhook_receive, name="receive"),
]
hook_urls = (hook_urlpatterns, "hooks")

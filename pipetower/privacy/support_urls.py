"""The team's support access page, under /teams/<slug>/support-access/
(namespace "support_access")."""

from django.urls import path

from pipetower.privacy import support_views

app_name = "support_access"

urlpatterns = [
    path("", support_views.support_access_page, name="list"),
    path("<int:grant_id>/revoke/", support_views.support_grant_revoke, name="revoke"),
]

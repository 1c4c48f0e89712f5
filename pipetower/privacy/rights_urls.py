"""URLs of the export and deletion pages, included under /privacy/ (namespace "privacy")."""

from django.urls import path

from pipetower.privacy import rights_views

app_name = "privacy"

urlpatterns = [
    path("export/", rights_views.export_page, name="export"),
    path("export/download/<str:token>/", rights_views.export_download, name="export_download"),
    path("delete/", rights_views.deletion_page, name="deletion"),
    path("delete/scheduled/", rights_views.deletion_scheduled, name="deletion_scheduled"),
]

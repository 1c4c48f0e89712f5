from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from pipetower.api.api import api
from pipetower.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("account/", include("pipetower.accounts.urls")),
    path("teams/", include("pipetower.teams.urls")),
    path("teams/<slug:team_slug>/activity/", include("pipetower.audit.urls")),
    path("tokens/", include("pipetower.api.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

handler403 = "pipetower.core.views.forbidden"
handler404 = "pipetower.core.views.not_found"
handler500 = "pipetower.core.views.server_error"

if settings.DEBUG:  # pragma: no cover - development convenience only
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

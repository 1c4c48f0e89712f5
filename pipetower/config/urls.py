from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from pipetower.accounts import security_views as accounts_security_views
from pipetower.actions.urls import approval_urls, hook_urls, run_urls, schedule_urls, webhook_urls
from pipetower.api.api import api
from pipetower.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("status", core_views.status_page, name="status"),
    path("favicon.ico", core_views.favicon),
    # Sessions are listed on the security page ("Where you are signed in"), not a page of their own.
    path("accounts/sessions/", accounts_security_views.sessions_moved),
    path("accounts/", include("allauth.urls")),
    path("account/", include("pipetower.accounts.urls")),
    path("teams/", include("pipetower.teams.urls")),
    path("teams/<slug:team_slug>/activity/", include("pipetower.audit.urls")),
    path("teams/<slug:team_slug>/servers/", include("pipetower.servers.urls")),
    path("teams/<slug:team_slug>/actions/", include("pipetower.actions.urls")),
    path("teams/<slug:team_slug>/runs/", include(run_urls)),
    path("teams/<slug:team_slug>/approvals/", include(approval_urls)),
    path("teams/<slug:team_slug>/schedules/", include(schedule_urls)),
    path("teams/<slug:team_slug>/webhooks/", include(webhook_urls)),
    path("teams/<slug:team_slug>/notifications/", include("pipetower.notifications.urls")),
    path("teams/<slug:team_slug>/support-access/", include("pipetower.privacy.support_urls")),
    path("hooks/", include(hook_urls)),
    path("tokens/", include("pipetower.api.urls")),
    path("privacy/", include("pipetower.privacy.urls")),
    path("support/", include("pipetower.support.urls")),
    path("api/v1/", api.urls),
    path("cookies/", include("pipetower.analytics.urls")),
    path("admin/", admin.site.urls),
]

handler403 = "pipetower.core.views.forbidden"
handler404 = "pipetower.core.views.not_found"
handler500 = "pipetower.core.views.server_error"
# allauth answers a reached rate limit with this (429 with Retry-After).
handler429 = "pipetower.core.security.too_many_requests"

if settings.DEBUG:  # pragma: no cover - development convenience only
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

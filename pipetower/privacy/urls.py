"""URLs of the privacy center, under /privacy/ (namespace "privacy").

The export and deletion pages live in `rights_urls` and are included here, so
one namespace serves the whole privacy center."""

from django.urls import path

from pipetower.privacy import register_views, rights_urls, views

app_name = "privacy"

urlpatterns = [
    path("", views.what_we_collect, name="what_we_collect"),
    path("center/", views.center, name="center"),
    path("center/consent/", views.consent_change, name="consent_change"),
    path("center/restrict/", views.restriction_start, name="restriction_start"),
    path("center/restrict/lift/", views.restriction_lift_request, name="restriction_lift_request"),
    path("restriction/lift/<str:token>/", views.restriction_lift, name="restriction_lift"),
    path("requests/", views.requests_page, name="requests"),
    path("requests/new/", views.request_file, name="request_file"),
    path("requests/confirm/<str:token>/", views.request_confirm, name="request_confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("subprocessors/", register_views.subprocessors_page, name="subprocessors"),
    path(
        "subprocessors/confirm/<str:token>/",
        register_views.subprocessors_confirm,
        name="subprocessors_confirm",
    ),
    path(
        "subprocessors/unsubscribe/<str:token>/",
        register_views.subprocessors_unsubscribe,
        name="subprocessors_unsubscribe",
    ),
    path("transparency/", register_views.transparency, name="transparency"),
    path("policy/", views.policy_page, name="policy"),
    path("policy/versions/<int:number>/", views.policy_version_page, name="policy_version"),
    path("policy/acknowledge/", views.policy_acknowledge, name="policy_acknowledge"),
    *rights_urls.urlpatterns,
]

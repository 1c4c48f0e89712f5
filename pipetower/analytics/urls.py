from django.urls import path

from pipetower.analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.cookie_page, name="cookies"),
    path("consent/", views.consent, name="consent"),
    path("blocked/", views.blocked, name="blocked"),
    path("stats/", views.stats, name="stats"),
]

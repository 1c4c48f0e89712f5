from django.urls import path

from pipetower.teams import views

app_name = "teams"
urlpatterns = [
    path("", views.team_list, name="list"),
    path("new/", views.team_list, name="create"),
    path("<slug:team_slug>/", views.team_list, name="detail"),
    path("<slug:team_slug>/members/", views.team_list, name="members"),
]

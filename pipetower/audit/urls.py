from django.urls import path

from pipetower.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.activity, name="activity"),
    path("activity.csv", views.activity_csv, name="activity_csv"),
]

from django.urls import path

from pipetower.api import views

app_name = "tokens"
urlpatterns = [
    path("", views.token_list, name="list"),
]

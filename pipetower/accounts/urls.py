from django.urls import path

from pipetower.accounts import views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("avatar/<int:user_id>/", views.profile, name="avatar"),
]

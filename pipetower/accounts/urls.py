from django.urls import path

from pipetower.accounts import security_views, views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/avatar/", views.avatar_upload, name="avatar_upload"),
    path("profile/avatar/remove/", views.avatar_remove, name="avatar_remove"),
    path("avatar/<int:user_id>/", views.avatar, name="avatar"),
    path("confirm-email/resend/", views.confirmation_resend, name="confirmation_resend"),
    path("security/", security_views.security, name="security"),
    path("security/sessions/<int:session_id>/end/", security_views.session_end, name="session_end"),
    path(
        "security/sessions/end-others/",
        security_views.sessions_end_others,
        name="sessions_end_others",
    ),
    path("security/not-me/<str:token>/", security_views.signin_disown, name="signin_disown"),
]

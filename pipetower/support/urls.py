from django.urls import path

from pipetower.support import views

app_name = "support"

urlpatterns = [
    path("contact/", views.contact, name="contact"),
    path("surveys/<int:survey_id>/", views.survey, name="survey"),
    path("interviews/<str:token>/", views.interview, name="interview"),
    path(
        "interviews/recording/withdraw/",
        views.interview_recording_withdraw,
        name="interview_recording_withdraw",
    ),
]

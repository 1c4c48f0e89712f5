from django.urls import path

from pipetower.support import views

app_name = "support"

urlpatterns = [
    path("contact/", views.contact, name="contact"),
    path("surveys/<int:survey_id>/", views.survey, name="survey"),
]

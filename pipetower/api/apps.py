from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "pipetower.api"
    label = "api"
    verbose_name = "API"

from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "pipetower.teams"
    label = "teams"
    verbose_name = "Teams"

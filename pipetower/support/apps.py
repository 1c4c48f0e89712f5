from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "pipetower.support"
    label = "support"
    verbose_name = "Support"

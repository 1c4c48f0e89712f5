from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "pipetower.analytics"
    label = "analytics"
    verbose_name = "Analytics and cookies"

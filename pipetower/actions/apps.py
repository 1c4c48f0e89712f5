from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "pipetower.actions"
    label = "actions"
    verbose_name = "Actions and runs"
    default_auto_field = "django.db.models.BigAutoField"

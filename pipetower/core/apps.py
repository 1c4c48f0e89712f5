from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pipetower.core"
    label = "core"
    verbose_name = "Pipetower core"

    def ready(self) -> None:
        # Bind shared tasks to Pipetower's Celery app and register system checks.
        from pipetower.config import celery  # noqa: F401
        from pipetower.core import checks  # noqa: F401

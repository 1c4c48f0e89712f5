from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "pipetower.privacy"
    label = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from pipetower.privacy import receivers

        receivers.connect()

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "pipetower.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from pipetower.accounts import receivers

        receivers.connect()

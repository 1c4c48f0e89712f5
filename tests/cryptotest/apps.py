from django.apps import AppConfig


class CryptotestConfig(AppConfig):
    name = "tests.cryptotest"
    label = "cryptotest"
    verbose_name = "Encryption test models"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "pipetower.audit"
    label = "audit"
    verbose_name = "Audit"

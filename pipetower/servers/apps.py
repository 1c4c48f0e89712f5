from django.apps import AppConfig


class ServersConfig(AppConfig):
    name = "pipetower.servers"
    label = "servers"
    verbose_name = "Servers"

from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "pipetower.teams"
    label = "teams"
    verbose_name = "Teams"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        from pipetower.teams.signup import accept_invitation_on_signup

        user_signed_up.connect(
            accept_invitation_on_signup, dispatch_uid="pipetower.teams.accept_invitation"
        )

"""Models that use EncryptedTextField the way Pipetower's apps do (tests only)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from pipetower.core.fields import EncryptedTextField
from pipetower.teams.models import Team


class PrivateKeyField(EncryptedTextField):
    """A subclass: rotation must find it by type, not by class name."""


class Secret(models.Model):
    """A team's named secret, encrypted with the team's data key."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    value = EncryptedTextField(key_owner="team")
    note = EncryptedTextField(key_owner="team", blank=True)

    def __str__(self) -> str:
        return self.name


class SecretAlias(Secret):
    """A proxy: the same table, so it must not be listed (or rotated) twice."""

    class Meta:
        proxy = True


class Keypair(models.Model):
    """A person's own key, encrypted with the account's data key."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    private_key = PrivateKeyField(key_owner="owner")

    def __str__(self) -> str:
        return f"keypair of {self.owner_id}"

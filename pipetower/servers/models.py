"""Servers a team runs actions on, how Pipetower logs in to them, and their pinned host keys.

Secrets (private keys, passwords) live only in `EncryptedTextField`s under the
team's data key; nothing here ever renders them. docs/servers.md explains the
pinning and key-rotation rules these models carry.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from pipetower.core.fields import EncryptedTextField
from pipetower.core.models import TimeStampedModel
from pipetower.teams.models import Team


class TeamServerSettings(models.Model):
    """Per-team server policy. Created on first read with safe defaults."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="server_settings")
    trust_on_first_use = models.BooleanField(
        default=False,
        help_text="Pin a server's host key automatically the first time Pipetower connects.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "team server settings"
        verbose_name_plural = "team server settings"

    def __str__(self) -> str:
        return f"server settings of {self.team}"


class TeamSshKey(TimeStampedModel):
    """An ED25519 keypair Pipetower generated for a team.

    A team has one `current` key. Rotation adds a `next` key; until the admin
    finishes the rotation, connections offer both, so servers keep working while
    the new public key is being installed. Finishing retires the old key and
    wipes its private half.
    """

    class State(models.TextChoices):
        CURRENT = "current", "Current"
        NEXT = "next", "New (rotation in progress)"
        RETIRED = "retired", "Retired"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="ssh_keys")
    state = models.CharField(max_length=16, choices=State.choices, default=State.CURRENT)
    public_key = models.TextField(help_text="The authorized_keys line, comment included.")
    fingerprint = models.CharField(max_length=80)
    private_key = EncryptedTextField(key_owner="team", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("team", "-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("team",), condition=Q(state="current"), name="one_current_team_ssh_key"
            ),
            models.UniqueConstraint(
                fields=("team",), condition=Q(state="next"), name="one_next_team_ssh_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} SSH key {self.fingerprint} ({self.state})"


class Tag(models.Model):
    """A label for targeting: an action can run on every server tagged `web`."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="server_tags")
    name = models.CharField(max_length=40)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=("team", "name"), name="unique_team_server_tag"),
        ]

    def __str__(self) -> str:
        return self.name


class Server(TimeStampedModel):
    class AuthMethod(models.TextChoices):
        TEAM_KEY = "team_key", "The team's SSH key"
        PRIVATE_KEY = "private_key", "An uploaded private key"
        PASSWORD = "password", "A password"

    class PinSource(models.TextChoices):
        CONFIRMED = "confirmed", "Fingerprint confirmed"
        TRUST_ON_FIRST_USE = "trust_on_first_use", "Trusted on first use"
        PASTED = "pasted", "Pasted known_hosts line"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="servers")
    name = models.CharField(max_length=100)
    host = models.CharField(max_length=253, help_text="DNS name, IPv4 or IPv6 address.")
    port = models.PositiveIntegerField(default=22)
    username = models.CharField(max_length=64)
    tags = models.ManyToManyField(Tag, blank=True, related_name="servers")

    auth_method = models.CharField(
        max_length=16, choices=AuthMethod.choices, default=AuthMethod.TEAM_KEY
    )
    private_key = EncryptedTextField(key_owner="team", blank=True)
    private_key_fingerprint = models.CharField(max_length=80, blank=True)
    private_key_type = models.CharField(max_length=40, blank=True)
    password = EncryptedTextField(key_owner="team", blank=True)

    # Pinned host keys: OpenSSH public key lines ("ssh-ed25519 AAAA…"), one per line.
    host_keys = models.TextField(blank=True)
    host_key_pinned_at = models.DateTimeField(null=True, blank=True)
    host_key_pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    host_key_pin_source = models.CharField(max_length=24, choices=PinSource.choices, blank=True)
    # The key the host presented at the last check when it was not (or no longer) the pin.
    offered_host_key = models.TextField(blank=True)
    offered_host_key_at = models.DateTimeField(null=True, blank=True)

    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_error = models.CharField(max_length=32, blank=True)
    last_check_message = models.TextField(blank=True)
    # A connection test asked for and not finished yet (it runs as a task).
    check_requested_at = models.DateTimeField(null=True, blank=True)
    check_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remote_hostname = models.CharField(max_length=255, blank=True)
    remote_os = models.CharField(max_length=255, blank=True)
    remote_uptime_seconds = models.PositiveBigIntegerField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=("team", "name"), name="unique_team_server_name"),
            models.CheckConstraint(
                condition=Q(port__gte=1) & Q(port__lte=65535), name="server_port_in_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        """`user@host:port`, with IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.username}@{host}:{self.port}"

    @property
    def pinned_host_keys(self) -> tuple[str, ...]:
        return tuple(line.strip() for line in self.host_keys.splitlines() if line.strip())

    @property
    def is_pinned(self) -> bool:
        return bool(self.pinned_host_keys)

    @property
    def host_key_fingerprints(self) -> list[str]:
        from pipetower.servers.keys import fingerprint_of_line

        return [fingerprint_of_line(line) for line in self.pinned_host_keys]

    @property
    def host_key_labels(self) -> list[str]:
        """Each pinned key as `ssh-keygen -l` shows it: 'ED25519 SHA256:…'."""
        from pipetower.servers.keys import fingerprint_of_line, key_type_of_line

        return [f"{key_type_of_line(x)} {fingerprint_of_line(x)}" for x in self.pinned_host_keys]

    @property
    def offered_host_keys(self) -> list[str]:
        """The keys the host presented at the last test, one per type, Ed25519 first."""
        from pipetower.servers.keys import host_key_lines

        return host_key_lines(self.offered_host_key)

    @property
    def offered_host_key_line(self) -> str:
        """The presented key Pipetower pins on confirmation: Ed25519 when the host has one."""
        lines = self.offered_host_keys
        return lines[0] if lines else ""

    @property
    def offered_host_key_choices(self) -> list[tuple[str, str]]:
        """Every presented key as (label, the file on the server to compare it with)."""
        from pipetower.servers.keys import host_key_file_of_line, host_key_label_of_line

        return [
            (host_key_label_of_line(line), host_key_file_of_line(line))
            for line in self.offered_host_keys
        ]

    @property
    def offered_host_key_label(self) -> str:
        from pipetower.servers.keys import host_key_label_of_line

        line = self.offered_host_key_line
        return host_key_label_of_line(line) if line else ""

    @property
    def offered_host_key_file(self) -> str:
        """Where on the server the admin finds the key to compare with."""
        from pipetower.servers.keys import host_key_file_of_line

        return host_key_file_of_line(self.offered_host_key_line or "ssh-ed25519")

    @property
    def offered_host_key_fingerprint(self) -> str:
        from pipetower.servers.keys import fingerprint_of_line

        line = self.offered_host_key_line
        return fingerprint_of_line(line) if line else ""

    @property
    def host_key_changed(self) -> bool:
        """The host presented a key that differs from the pin (re-pin needed)."""
        return self.is_pinned and self.last_check_error == "host_key_changed"

    @property
    def check_pending(self) -> bool:
        """A connection test was asked for and has not finished (nor been lost)."""
        from pipetower.servers.services import check_is_pending

        return check_is_pending(self)

    @property
    def last_check_title(self) -> str:
        from pipetower.servers.errors import ERROR_TITLES

        if self.last_check_ok:
            return "OK"
        return ERROR_TITLES.get(self.last_check_error, "Failed")

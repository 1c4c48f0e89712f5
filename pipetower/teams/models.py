from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from pipetower.core.models import DataKey


class Role(models.TextChoices):
    """Team roles, from most to least powerful. docs/teams.md has the permission table."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return ROLE_RANK[self] >= ROLE_RANK[other]


ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    data_key = models.OneToOneField(
        DataKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Members without two-factor authentication see a set-up page instead of the
    # team, and the API refuses their requests for it (teams.permissions).
    require_2fa = models.BooleanField("require two-factor authentication", default=False)
    # An owner asked to delete the team: it is frozen (no runs start) until the
    # scheduled purge erases it at `deletion_scheduled_for`, unless an owner cancels.
    deletion_scheduled_for = models.DateTimeField(null=True, blank=True)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Retention (teams.retention): finished runs, with their per-server results and
    # output, are deleted this many days after they ended.
    run_retention_days = models.PositiveIntegerField("run history period (days)", default=90)
    # Output kept per server of a run; None: the installation's default
    # (PIPETOWER_OUTPUT_LIMIT_BYTES).
    output_limit_bytes = models.PositiveBigIntegerField(
        "output kept per server (bytes)", null=True, blank=True
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def deletion_scheduled(self) -> bool:
        return self.deletion_scheduled_for is not None

    def encryption_key(self) -> DataKey:
        """This team's data key, created on first use."""
        from pipetower.core import crypto

        if self.data_key_id is None:
            with transaction.atomic():
                locked = Team.objects.select_for_update().get(pk=self.pk)
                if locked.data_key_id is None:
                    locked.data_key = crypto.data_key_create(purpose=DataKey.Purpose.TEAM)
                    Team.objects.filter(pk=self.pk).update(data_key=locked.data_key)
                self.data_key = locked.data_key
        assert self.data_key is not None
        return self.data_key


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("team", "user"), name="unique_team_member"),
        ]
        ordering = ("team", "user__email")

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Invitation(models.Model):
    """An emailed, single-use, expiring invitation. Only a hash of the token is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.team}"

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

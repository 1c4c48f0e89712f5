from __future__ import annotations

import secrets
from pathlib import PurePosixPath
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from pipetower.accounts.geo import Location
from pipetower.core.models import DataKey


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, password, **extra)


def avatar_path(instance: User, filename: str) -> str:
    # A random name: the file name a person uploaded is not kept.
    return f"avatars/{instance.pk}/{secrets.token_hex(8)}.webp"


class User(AbstractUser):
    """A person who signs in to Pipetower. Email is the login; there is no username."""

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150)
    avatar = models.ImageField(upload_to=avatar_path, blank=True)
    signup_ip = models.GenericIPAddressField(null=True, blank=True, unpack_ipv4=True)
    data_key = models.OneToOneField(
        DataKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        ordering = ("email",)

    def __str__(self) -> str:
        return self.name or self.email

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def avatar_version(self) -> str:
        """Changes whenever the picture changes (each upload gets a new random file name)."""
        if not self.avatar:
            return ""
        return PurePosixPath(str(self.avatar.name)).stem

    @property
    def avatar_url(self) -> str:
        """Where the picture is served; versioned so browsers may cache it for long."""
        if not self.avatar:
            return ""
        url = reverse("accounts:avatar", args=[self.pk])
        return f"{url}?v={self.avatar_version}"

    def encryption_key(self) -> DataKey:
        """This account's data key, created on first use."""
        from pipetower.core import crypto

        if self.data_key_id is None:
            with transaction.atomic():
                locked = User.objects.select_for_update().get(pk=self.pk)
                if locked.data_key_id is None:
                    locked.data_key = crypto.data_key_create(purpose=DataKey.Purpose.USER)
                    User.objects.filter(pk=self.pk).update(data_key=locked.data_key)
                self.data_key = locked.data_key
        assert self.data_key is not None
        return self.data_key


SECOND_FACTOR_LABELS = {
    "totp": "authenticator app",
    "recovery_codes": "recovery code",
    "webauthn": "security key",
}


class SignInEvent(models.Model):
    """One sign-in attempt (or the first API-token use from an address on a day).

    Shown to its owner on the security page. Kept while the account exists and
    deleted with it (docs/security.md).
    """

    class Method(models.TextChoices):
        PASSWORD = "password", "Password"
        GOOGLE = "google", "Google"
        MFA = "mfa", "Two-factor code"
        PASSKEY = "passkey", "Passkey"
        EMAIL_LINK = "email_link", "Email link"
        API_TOKEN = "api_token", "API token"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Signed in"
        FAILED = "failed", "Failed"
        PENDING = "pending", "Second step asked"
        USED = "used", "Used"

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="signin_events"
    )
    created_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=16, choices=Method.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    second_factor = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True, unpack_ipv4=True)
    country_code = models.CharField(max_length=2, blank=True)
    country_name = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    browser = models.CharField(max_length=100, blank=True)
    os = models.CharField(max_length=100, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    disowned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["user", "-created_at"], name="signin_user_recent"),
            models.Index(
                fields=["user", "method", "ip", "created_at"], name="signin_user_method_ip"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.outcome} for {self.user_id} at {self.created_at}"

    @property
    def location(self) -> Location:
        return Location(
            country_code=self.country_code,
            country_name=self.country_name,
            region=self.region,
            city=self.city,
        )

    @property
    def second_factor_label(self) -> str:
        return SECOND_FACTOR_LABELS.get(self.second_factor, self.second_factor.replace("_", " "))

    @property
    def device(self) -> str:
        """Browser and OS, e.g. "Firefox on Linux"; "curl"; or "Unknown device"."""
        if self.browser and self.os:
            return f"{self.browser} on {self.os}"
        return self.browser or self.os or "Unknown device"

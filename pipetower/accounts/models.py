from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models, transaction

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
    import secrets

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

"""The staff back office for people: email-based, no usernames.

Staff look people up here and manage who is staff. A person's own details and
the state of their account are theirs: they change them on their own pages, or
staff act on a privacy request through the privacy services. So profile fields
and "active" are read only, and accounts are neither added nor deleted here
(sign-up and invitations make accounts, `pipetower createadmin` makes a
staff account, and deletion is `privacy.deletion` with its grace period and
audit trail)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from pipetower.accounts.models import User


def _clean_email(form: Any) -> str:
    email = form.cleaned_data["email"].strip().lower()
    taken = User.objects.filter(email__iexact=email)
    if form.instance.pk:
        taken = taken.exclude(pk=form.instance.pk)
    if taken.exists():
        raise ValidationError("Another account already uses this email address.")
    return email


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")
        field_classes: dict[str, Any] = {}

    def clean_email(self) -> str:
        return _clean_email(self)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes: dict[str, Any] = {}

    def clean_email(self) -> str:
        return _clean_email(self)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("email",)}),
        ("Profile", {"fields": ("name", "avatar", "signup_ip")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = (
        "email",
        "name",
        "avatar",
        "signup_ip",
        "is_active",
        "last_login",
        "date_joined",
    )
    list_display = ("email", "name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "name")
    ordering = ("email",)
    date_hierarchy = "date_joined"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        # Setting someone's password would let staff into their account and team.
        raise PermissionDenied("People set their own passwords (Forgot password).")

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

# allauth's admins, imported before they are replaced below (django-allauth's models).
import allauth.account.admin
import allauth.mfa.admin
import allauth.socialaccount.admin
import allauth.usersessions.admin  # noqa: F401
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.usersessions.models import UserSession
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


# --- django-allauth's models ---------------------------------------------------
# allauth's own admins edit addresses (an added, "verified" address is a way into
# someone's account), show sign-in secrets and tokens, and delete sessions and
# authenticators. Here they are read only and show no secret; changes go through
# the person's own account pages (allauth's flows), which check and notify.
# allauth's admin modules are imported at the top, so that replacing them does
# not depend on the order in which the admin discovers them.


class _ReadOnlyAdmin(admin.ModelAdmin):
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


for _model in (EmailAddress, Authenticator, SocialAccount, SocialToken, UserSession):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(EmailAddress)
class EmailAddressAdmin(_ReadOnlyAdmin):
    list_display = ("email", "user", "verified", "primary")
    list_filter = ("verified", "primary")
    search_fields = ("email", "user__email")
    fields = ("user", "email", "verified", "primary")


@admin.register(Authenticator)
class AuthenticatorAdmin(_ReadOnlyAdmin):
    """Which kind of second factor a person has; never its secret (`data`)."""

    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    search_fields = ("user__email",)
    fields = ("user", "type", "created_at", "last_used_at")


@admin.register(SocialAccount)
class SocialAccountAdmin(_ReadOnlyAdmin):
    """Which outside sign-in a person connected; not what the provider sent."""

    list_display = ("user", "provider", "date_joined", "last_login")
    list_filter = ("provider",)
    search_fields = ("user__email",)
    fields = ("user", "provider", "date_joined", "last_login")


@admin.register(UserSession)
class UserSessionAdmin(_ReadOnlyAdmin):
    """Signed-in sessions; people end them from their own account pages."""

    list_display = ("user", "created_at", "last_seen_at", "ip")
    search_fields = ("user__email",)
    fields = ("user", "created_at", "last_seen_at", "ip", "user_agent")


# Social tokens (the provider's access tokens) are secrets: not in the back office.

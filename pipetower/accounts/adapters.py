"""How Pipetower bends django-allauth: sign-up mode, invitations, sign-up IP, email delivery.

allauth owns the flows (sign-up, verification, sign-in, reset, email change);
these adapters are the only place Pipetower changes them.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpRequest

from pipetower.accounts.google import policy as google_signin
from pipetower.core.http import client_ip
from pipetower.core.links import rebase_context
from pipetower.teams import signup as team_signup


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """`PIPETOWER_SIGNUP` decides, with the teams app judging invitations."""
        return team_signup.signup_allowed(request)

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return team_signup.pending_invitation_url(request) or super().get_login_redirect_url(
            request
        )

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return team_signup.pending_invitation_url(request) or super().get_signup_redirect_url(
            request
        )

    def save_user(
        self,
        request: HttpRequest,
        user: AbstractBaseUser,
        form: BaseForm,
        commit: bool = True,
    ) -> AbstractBaseUser:
        """The new user gets their name and the address they signed up from in one save."""
        name = (form.cleaned_data.get("name") or "").strip()
        if name:
            user.name = name  # type: ignore[attr-defined]
        if not getattr(user, "signup_ip", None):
            user.signup_ip = client_ip(request)  # type: ignore[attr-defined]
        return super().save_user(request, user, form, commit=commit)

    def clean_password(self, password: str, user: AbstractBaseUser | None = None) -> str:
        """Validators compare the password with the person's name, at sign-up too.

        At sign-up allauth validates against an unsaved stand-in user that has
        only the email address; the name typed into the same form is added here.
        """
        request = getattr(self, "request", None)
        if (
            user is not None
            and user.pk is None
            and not getattr(user, "name", "")
            and request is not None
            and request.method == "POST"
        ):
            user.name = str(request.POST.get("name", "")).strip()[:150]  # type: ignore[attr-defined]
        return super().clean_password(password, user=user)

    def get_client_ip(self, request: HttpRequest) -> str:
        """One rule for client addresses across Pipetower (rate limits, notifications)."""
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client's address.")
        return ip

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Render now (the request is at hand), send once the database work is committed.

        allauth's messages carry one-time keys (verification and reset links), so
        they are sent from this process rather than written into the task queue.
        A failed delivery is logged and does not turn the page into an error.
        """
        from allauth.core import context as allauth_context
        from django.contrib.sites.shortcuts import get_current_site

        request = allauth_context.request
        ctx = {
            "request": request,
            "email": email,
            "current_site": get_current_site(request),
        }
        ctx.update(context)
        # allauth builds its links from the request's Host; every emailed link
        # goes to the one public address instead.
        rebase_context(ctx)
        if template_prefix.startswith("account/email/email_confirmation") and request is not None:
            from pipetower.accounts.views import CONFIRM_EMAIL_SESSION_KEY

            request.session[CONFIRM_EMAIL_SESSION_KEY] = email
        message = self.render_mail(template_prefix, email, ctx)
        transaction.on_commit(message.send, robust=True)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        full = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
        user.name = ((data.get("name") or full or "").strip())[:150]
        # Keep only the profile fields Pipetower uses (docs/security.md). This runs
        # before allauth saves or updates the SocialAccount, so the rest of the ID
        # token's claims are never stored.
        sociallogin.account.extra_data = google_signin.kept_claims(sociallogin.account.extra_data)
        return user

    def authenticate_by_email(self, sociallogin: Any) -> tuple[Any, str] | None:
        """Sign in to an existing account only through an address verified on both sides."""
        return google_signin.verified_match(sociallogin)

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        """Refuse, with a page that says why, a Google sign-in whose address belongs to an
        account that never confirmed it (it may have been registered by someone else)."""
        google_signin.refuse_unverified_local_account(request, sociallogin)

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        google_signin.explain_error(request, error, exception, extra_context)

    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> Any:
        user = sociallogin.user
        if not getattr(user, "signup_ip", None):
            user.signup_ip = client_ip(request)
        return super().save_user(request, sociallogin, form=form)

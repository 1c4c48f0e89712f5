"""The OAuth 2.0 adapter behind Pipetower's Google sign-in (see provider.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.google.views import (
    GoogleOAuth2Adapter as AllauthGoogleOAuth2Adapter,
)
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Google's endpoints (its discovery document lists the same).
DEFAULTS = {
    "AUTHORIZE_URL": "https://accounts.google.com/o/oauth2/v2/auth",
    "ACCESS_TOKEN_URL": "https://oauth2.googleapis.com/token",
    "JWKS_URL": "https://www.googleapis.com/oauth2/v3/certs",
    "ID_TOKEN_ISSUER": "https://accounts.google.com",
}


def endpoint(name: str) -> str:
    configured = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).get("google", {})
    return str(configured.get(name) or DEFAULTS[name])


class GoogleOAuth2Adapter(AllauthGoogleOAuth2Adapter):
    fetch_userinfo = False

    @property
    def authorize_url(self) -> str:
        return endpoint("AUTHORIZE_URL")

    @property
    def access_token_url(self) -> str:
        return endpoint("ACCESS_TOKEN_URL")

    @property
    def id_token_issuer(self) -> str:
        return endpoint("ID_TOKEN_ISSUER")

    def _decode_id_token(self, app: Any, id_token: str) -> dict[str, Any]:
        return self.decode_id_token(app, id_token)

    def decode_id_token(self, app: Any, id_token: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience and expiry check out."""
        try:
            return jwtkit.verify_and_decode(
                credential=id_token,
                keys_url=endpoint("JWKS_URL"),
                issuer=endpoint("ID_TOKEN_ISSUER"),
                audience=app.client_id,
                lookup_kid=jwtkit.lookup_kid_jwk,
                verify_signature=True,
            )
        except (KeyError, TypeError, ValueError) as error:
            # A token without a key id, or key data of the wrong shape.
            raise OAuth2Error("Invalid id_token") from error


def _when_configured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view, or a plain 404 page while no Google client is configured (allauth
    itself would raise, which answered 500)."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not get_adapter().list_apps(request, provider="google"):
            return render(
                request,
                "core/error.html",
                {
                    "code": 404,
                    "title": "Google sign-in is not set up",
                    "message": "This Pipetower has no Google client configured. "
                    "Sign in with your email address and password instead.",
                },
                status=404,
            )
        return view(request, *args, **kwargs)

    return wrapped


oauth2_login = _when_configured(OAuth2LoginView.adapter_view(GoogleOAuth2Adapter))
oauth2_callback = _when_configured(OAuth2CallbackView.adapter_view(GoogleOAuth2Adapter))

"""Pipetower's Google provider (`SOCIALACCOUNT_PROVIDERS["google"]["provider_class"]`).

It is allauth's Google provider with two differences:

- The ID token's signature is always checked against Google's published keys
  (JWKS). allauth skips that check when the token came straight from Google's
  token endpoint over TLS, which OpenID Connect allows; Pipetower checks anyway,
  because the ID token is the only thing it believes about the person.
- Google's endpoints are read from settings on each use instead of once at
  import, so an operator (or a test) can point them elsewhere:
  `AUTHORIZE_URL`, `ACCESS_TOKEN_URL`, `JWKS_URL`, `ID_TOKEN_ISSUER` in
  `SOCIALACCOUNT_PROVIDERS["google"]`.

Only the routes Pipetower uses are served (sign-in and its callback); Google's
"One Tap" token endpoint is not.
"""

from __future__ import annotations

from typing import Any

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.google.provider import GoogleProvider as AllauthGoogleProvider
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.http import HttpRequest

from pipetower.accounts.google.views import GoogleOAuth2Adapter


class GoogleProvider(AllauthGoogleProvider):
    package = "pipetower.accounts.google"
    oauth2_adapter_class = GoogleOAuth2Adapter

    def verify_token(self, request: HttpRequest, token: dict[str, Any]) -> Any:
        credential = token.get("id_token")
        if not credential:
            raise get_adapter().validation_error("invalid_token")
        try:
            identity = GoogleOAuth2Adapter(request).decode_id_token(self.app, credential)
        except (OAuth2Error, requests.RequestException) as error:
            raise get_adapter().validation_error("invalid_token") from error
        return self.sociallogin_from_response(request, identity)


provider_classes = [GoogleProvider]

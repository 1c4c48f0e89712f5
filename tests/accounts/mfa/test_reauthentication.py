"""Every two-factor change asks the person to prove it is them again first."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from pipetower.accounts.mfa import MFAAdapter
from pipetower.accounts.models import User
from pipetower.core.crypto import CryptoError
from tests.accounts.mfa.helpers import (
    give_totp,
    reauthenticate,
    sign_in_with_totp,
)

pytestmark = pytest.mark.django_db

CHANGES = [
    ("GET", "mfa_add_webauthn"),
    ("GET", "mfa_generate_recovery_codes"),
    ("POST", "mfa_generate_recovery_codes"),
    ("POST", "mfa_deactivate_totp"),
]


def _age_the_reauthentication(client: Client, seconds: int = 3600) -> None:
    session = client.session
    session["account_authentication_methods"] = [
        {**record, "at": record["at"] - seconds}
        for record in session["account_authentication_methods"]
    ]
    session.save()


@pytest.mark.parametrize(("method", "name"), CHANGES)
def test_a_two_factor_change_redirects_to_confirm_it_is_you(
    client: Client, user: User, method: str, name: str
) -> None:
    secret = give_totp(user)
    sign_in_with_totp(client, user.email, secret)
    before = list(Authenticator.objects.filter(user=user).values_list("pk", "data"))

    response = getattr(client, method.lower())(reverse(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert list(Authenticator.objects.filter(user=user).values_list("pk", "data")) == before


@pytest.mark.parametrize(("method", "name"), CHANGES)
def test_a_confirmation_older_than_five_minutes_no_longer_counts(
    client: Client, user: User, method: str, name: str
) -> None:
    secret = give_totp(user)
    sign_in_with_totp(client, user.email, secret)
    reauthenticate(client)
    _age_the_reauthentication(client, seconds=301)

    response = getattr(client, method.lower())(reverse(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_the_confirm_page_offers_the_authenticator_app_too(client: Client, user: User) -> None:
    secret = give_totp(user)
    sign_in_with_totp(client, user.email, secret)

    page = client.get(reverse("account_reauthenticate"))

    assert reverse("mfa_reauthenticate") in page.content.decode()


def test_two_factor_secrets_are_not_stored_for_nobody() -> None:
    """Outside a signed-in request there is no account whose key could seal a secret."""
    with pytest.raises(CryptoError, match="signed-in person"):
        MFAAdapter().encrypt("JBSWY3DPEHPK3PXP")


def test_a_stored_secret_in_an_unknown_form_is_refused() -> None:
    with pytest.raises(CryptoError, match="does not recognise"):
        MFAAdapter().decrypt("JBSWY3DPEHPK3PXP")

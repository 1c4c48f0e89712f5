"""Google sign-in, run end to end against a real OpenID Connect provider on loopback.

Nothing is mocked: Pipetower redirects to the provider's authorization
endpoint, the provider redirects back with a code, and Pipetower exchanges the
code over HTTP, fetches the signing keys and checks the RS256 ID token.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken

from pipetower.accounts.models import SignInEvent, User
from tests.accounts.security.conftest import (
    IP_DE,
    browser,
    google_authorize,
    google_callback,
    google_sign_in,
)
from tests.factories import UserFactory


def _signed_in_as(client) -> str | None:  # type: ignore[no-untyped-def]
    response = client.get("/account/profile/")
    if response.status_code != 200:
        return None
    return response.context["user"].email


def test_a_new_person_signs_up_and_in_through_the_whole_openid_connect_flow(google, db):
    client = browser(IP_DE)
    response = google_sign_in(client)

    assert response.status_code == 302, response.content.decode()[:400]
    assert response["Location"] == "/"
    assert _signed_in_as(client) == "grace@example.com"
    user = User.objects.get(email="grace@example.com")
    assert user.name == "Grace Hopper"
    assert not user.has_usable_password()
    assert EmailAddress.objects.get(user=user).verified
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("google", google.identity["sub"])

    # The code went back over HTTP with the client secret and the PKCE verifier.
    token_calls = [form for method, path, form in google.requests_seen if path == "/token"]
    assert len(token_calls) == 1
    assert token_calls[0]["client_secret"] == google.client_secret
    assert token_calls[0]["code_verifier"]
    authorize = next(q for m, p, q in google.requests_seen if p == "/authorize")
    assert authorize["code_challenge_method"] == "S256"
    # The ID token's signature was checked against the provider's published keys.
    assert ("GET", "/jwks", {}) in google.requests_seen


def test_only_the_profile_fields_pipetower_needs_are_kept_and_no_oauth_tokens(google, db):
    client = browser()
    google_sign_in(client)
    account = SocialAccount.objects.get()
    assert account.extra_data == {
        "sub": google.identity["sub"],
        "email": "grace@example.com",
        "email_verified": True,
        "name": "Grace Hopper",
    }
    assert not SocialToken.objects.exists()

    # Signing in again refreshes the kept fields and still keeps nothing else.
    client.post("/accounts/logout/")
    google.identity["name"] = "Rear Admiral Grace Hopper"
    google_sign_in(client)
    account.refresh_from_db()
    assert set(account.extra_data) == {"sub", "email", "email_verified", "name"}
    assert account.extra_data["name"] == "Rear Admiral Grace Hopper"
    assert not SocialToken.objects.exists()


def test_a_google_sign_in_is_logged(google, db):
    google_sign_in(browser(IP_DE))
    event = SignInEvent.objects.get()
    assert (event.method, event.outcome, event.country_code) == ("google", "success", "DE")
    assert event.detail == "Google account grace@example.com"


def test_an_account_with_the_same_confirmed_address_is_signed_in_and_linked(google, db):
    existing = UserFactory(email="grace@example.com", name="Grace")
    client = browser()

    response = google_sign_in(client)

    assert response.status_code == 302
    assert _signed_in_as(client) == "grace@example.com"
    assert User.objects.count() == 1
    assert SocialAccount.objects.get().user == existing
    assert existing.has_usable_password()


def test_google_email_of_an_account_that_never_confirmed_it_is_refused_with_a_clear_page(
    google, db
):
    squatter = UserFactory(email="grace@example.com", verified=False)
    EmailAddress.objects.create(user=squatter, email=squatter.email, verified=False, primary=True)
    client = browser()

    response = google_sign_in(client)

    assert response.status_code == 409
    html = response.content.decode()
    assert "Confirm your address first" in html
    assert "that address\n  was never confirmed" in html
    assert "Google account was not linked" in html
    assert _signed_in_as(client) is None
    assert not SocialAccount.objects.exists()
    assert User.objects.count() == 1
    squatter.refresh_from_db()
    assert squatter.has_usable_password()
    event = SignInEvent.objects.get(user=squatter)
    assert (event.method, event.outcome) == ("google", "failed")
    assert event.reason == "Refused: the address is not confirmed in Pipetower"


def test_an_unconfirmed_account_without_any_email_record_is_refused_too(google, db):
    UserFactory(email="grace@example.com", verified=False)
    response = google_sign_in(browser())
    assert response.status_code == 409
    assert not SocialAccount.objects.exists()


def test_a_callback_whose_state_does_not_match_is_refused(google, db):
    client = browser()
    callback = urlsplit(google_authorize(client))
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    query["state"] = "forged-state"

    response = client.get(f"{callback.path}?{urlencode(query)}")

    assert response.status_code == 401
    html = response.content.decode()
    assert "Google sign-in did not work" in html
    assert "could not be matched to one started in this browser" in html
    assert _signed_in_as(client) is None
    assert not any(path == "/token" for _, path, _ in google.requests_seen)
    assert not User.objects.exists()


def test_a_callback_opened_in_another_browser_is_refused(google, db):
    callback = google_authorize(browser())
    other = browser()
    response = google_callback(other, callback)
    assert response.status_code == 401
    assert "could not be matched" in response.content.decode()
    assert _signed_in_as(other) is None


def test_an_id_token_whose_payload_was_changed_after_signing_is_refused(google, db):
    google.tamper_id_token = True
    client = browser()

    response = google_sign_in(client)

    assert response.status_code == 401
    html = response.content.decode()
    assert "Google&#x27;s answer could not be verified" in html
    assert _signed_in_as(client) is None
    assert not User.objects.exists()
    assert not SocialAccount.objects.exists()


def test_an_id_token_signed_with_a_key_the_provider_does_not_publish_is_refused(google, db):
    google.sign_with_other_key = True
    client = browser()
    response = google_sign_in(client)
    assert response.status_code == 401
    assert "could not be verified" in response.content.decode()
    assert _signed_in_as(client) is None


def test_the_sign_in_page_offers_google_when_it_is_configured(google, client, db):
    html = client.get("/accounts/login/").content.decode()
    assert "Sign in with Google" in html
    assert 'action="/accounts/google/login/' in html


def test_the_sign_in_page_has_no_google_button_without_configuration(client, db):
    assert "Sign in with Google" not in client.get("/accounts/login/").content.decode()


def test_google_sign_in_pages_say_it_is_not_set_up_without_configuration(client, db):
    """Unconfigured, allauth raised on these addresses (a 500); now a plain 404 page."""
    for response in (
        client.post("/accounts/google/login/"),
        client.get("/accounts/google/login/callback/?code=x&state=y"),
    ):
        assert response.status_code == 404
        assert "Google sign-in is not set up" in response.content.decode()

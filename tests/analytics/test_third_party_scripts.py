"""PIPETOWER_THIRD_PARTY_SCRIPTS: each script named with what it stores, loaded only
after its consent, its removable cookies removed on withdrawal."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from pipetower.accounts.models import User
from pipetower.analytics.cookies import CONSENT_COOKIE
from pipetower.analytics.scripts import parse_third_party_scripts
from pipetower.config.env import ConfigurationError
from tests.analytics.conftest import consent_cookie
from tests.analytics.test_settings import load
from tests.privacy.conftest import grant

pytestmark = pytest.mark.django_db

SCRIPTS = [
    {
        "name": "Plausible",
        "src": "https://plausible.example.com/js/script.js",
        "purpose": "Counts visits to each page",
        "category": "analytics",
        "cookies": [{"name": "_pk_id", "lifetime": "13 months"}, "_pk_ses"],
    },
    {
        "name": "AdsPixel",
        "src": "https://pixel.example.net/p.js",
        "purpose": "Measures which texts work better",
        "category": "ab_testing",
        "cookies": [{"name": "IDE", "domain": "pixel.example.net", "lifetime": "1 year"}],
    },
]


@pytest.fixture
def scripts(settings: Any) -> None:
    settings.THIRD_PARTY_SCRIPTS = parse_third_party_scripts(json.dumps(SCRIPTS))


def _deleted(response: Any) -> dict[str, str]:
    """Cookie names the response asks the browser to drop, with their domain."""
    return {
        name: morsel["domain"]
        for name, morsel in response.cookies.items()
        if morsel["expires"].startswith("Thu, 01 Jan 1970") and morsel["max-age"] == 0
    }


def test_the_banner_and_the_cookie_page_name_every_script_and_what_it_stores(
    client: Client, scripts: None
) -> None:
    banner = client.get("/").content.decode()
    for text in ("Plausible", "Counts visits to each page", "_pk_id", "_pk_ses", "AdsPixel"):
        assert text in banner
    assert "<code>IDE</code> on pixel.example.net" in banner

    page = client.get("/cookies/").content.decode()
    assert "Scripts from other services" in page
    assert "<code>_pk_id</code> (Pipetower can remove it)" in page
    assert "<code>IDE</code> (stored by pixel.example.net, Pipetower cannot remove it)" in page
    assert "13 months" in page and "Optional: A/B testing (third-party script: AdsPixel)" in page


def test_a_script_loads_only_after_the_consent_its_category_needs(
    client: Client, scripts: None
) -> None:
    before = client.get("/")
    assert "plausible.example.com" not in before.content.decode()
    assert "plausible.example.com" not in before["Content-Security-Policy"]

    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=False)
    after = client.get("/")
    body = after.content.decode()
    assert (
        '<script src="https://plausible.example.com/js/script.js" async '
        'data-third-party-script="Plausible"></script>'
    ) in body
    assert "pixel.example.net/p.js" not in body  # its A/B consent was not given
    policy = after["Content-Security-Policy"]
    assert "script-src 'self' https://plausible.example.com" in policy
    assert "pixel.example.net" not in policy


def test_accepting_in_the_banner_reloads_so_the_script_can_load(
    client: Client, scripts: None
) -> None:
    answer = client.post(
        "/cookies/consent/", {"choice": "accept_all"}, headers={"Accept": "application/json"}
    ).json()
    assert answer["reload"] is True and answer["removed_cookies"] == []


def test_withdrawing_removes_what_pipetower_can_and_names_what_it_cannot(
    client: Client, scripts: None
) -> None:
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)
    client.cookies["_pk_id"] = "visitor-1"
    client.cookies["IDE"] = "tracker"

    response = client.post("/cookies/consent/", {"choice": "reject_all", "next": "/cookies/"})

    deleted = _deleted(response)
    assert {"_pk_id": "", "_pk_ses": ""}.items() <= deleted.items()
    assert "IDE" not in deleted  # stored by another website: not Pipetower's to remove
    page = client.get("/cookies/").content.decode()
    assert "Pipetower removed these cookies: _pk_id, _pk_ses." in page
    assert (
        "Pipetower cannot remove these, because other websites store them: "
        "IDE (pixel.example.net)." in page
    )

    # The banner's script gets the same answer as data.
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)
    answer = client.post(
        "/cookies/consent/", {"choice": "reject_all"}, headers={"Accept": "application/json"}
    ).json()
    assert answer["removed_cookies"] == ["_pk_id", "_pk_ses"]
    assert answer["cookies_not_removable"] == ["IDE (pixel.example.net)"]


def test_withdrawing_only_analytics_leaves_the_other_scripts_cookies(
    client: Client, scripts: None
) -> None:
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)
    response = client.post(
        "/cookies/consent/",
        {"choice": "save", "ab_testing": "on", "next": "/cookies/"},
    )
    assert set(_deleted(response)) == {"_pk_id", "_pk_ses"}
    assert "IDE" not in client.get("/cookies/").content.decode().split("Pipetower removed")[1][:80]


def test_withdrawing_in_the_privacy_center_removes_them_on_the_next_page(
    client: Client, user: User, scripts: None
) -> None:
    grant(user, "analytics_cookies")
    client.force_login(user)
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=False)
    client.cookies["_pk_id"] = "visitor-1"
    assert "_pk_id" not in _deleted(client.get("/teams/"))

    grant(user, "analytics_cookies", granted=False)
    response = client.get("/teams/")
    assert _deleted(response) == {"_pk_id": ""}
    assert "plausible.example.com" not in response.content.decode()


def test_a_cookie_on_the_sites_parent_domain_is_removed_there(
    client: Client, settings: Any
) -> None:
    declared = [
        {
            "name": "Stats",
            "src": "https://stats.example.com/s.js",
            "purpose": "Counts visits",
            "category": "analytics",
            "cookies": [{"name": "_st", "domain": ".example.com", "removable": True}],
        }
    ]
    settings.THIRD_PARTY_SCRIPTS = parse_third_party_scripts(json.dumps(declared))
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=False)
    response = client.post("/cookies/consent/", {"choice": "reject_all"})
    header = SimpleCookie(response.cookies["_st"].OutputString())
    assert header["_st"]["domain"] == ".example.com"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x"}', "a JSON list of scripts"),
        ('[{"src": "https://a.example/s.js"}]', "script 1 needs a 'name'"),
        (
            '[{"name": "A", "src": "a.example/s.js", "purpose": "p", "category": "analytics"}]',
            "script 1 (A): 'src' must be a full http(s) address",
        ),
        (
            '[{"name": "A", "src": "https://a.example/s.js", "purpose": "p", "category": "ads"}]',
            "'category' is one of analytics, ab_testing, not 'ads'",
        ),
        (
            '[{"name": "A", "src": "https://a.example/s.js", "purpose": "p", '
            '"category": "analytics", "cookies": [{"name": "a b"}]}]',
            "cookie 1: 'a b' is not a valid cookie name",
        ),
        (
            '[{"name": "A", "src": "https://a.example/s.js", "purpose": "p", '
            '"category": "analytics", "cookie": []}]',
            "unknown key(s) cookie",
        ),
    ],
)
def test_a_wrong_declaration_stops_start_up_saying_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, message: str
) -> None:
    monkeypatch.delenv("PIPETOWER_THIRD_PARTY_SCRIPTS", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        load(monkeypatch, tmp_path, PIPETOWER_THIRD_PARTY_SCRIPTS=value)
    assert str(raised.value).startswith("PIPETOWER_THIRD_PARTY_SCRIPTS: ")
    assert message in str(raised.value)


def test_the_variable_is_read_at_start_up_and_needs_https_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = load(monkeypatch, tmp_path, PIPETOWER_THIRD_PARTY_SCRIPTS=json.dumps(SCRIPTS))
    [plausible, pixel] = loaded["THIRD_PARTY_SCRIPTS"]
    assert [c.removable for c in plausible.cookies] == [True, True]
    assert [(c.name, c.removable) for c in pixel.cookies] == [("IDE", False)]
    plain = [{**SCRIPTS[0], "src": "http://plausible.example.com/s.js"}]
    with pytest.raises(ConfigurationError, match="must use https in production"):
        load(
            monkeypatch,
            tmp_path,
            PIPETOWER_ENV="production",
            SECRET_KEY="x" * 50,
            PIPETOWER_MASTER_KEYS="k",
            PIPETOWER_THIRD_PARTY_SCRIPTS=json.dumps(plain),
        )

"""Consent and objection: opt-in, off by default, full history, easy withdrawal."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from pipetower.accounts.models import User
from pipetower.core.errors import ServiceError
from pipetower.privacy.consent import (
    WORDING_VERSIONS,
    consent_set,
    consent_state,
    consent_states,
    processing_allowed,
)
from pipetower.privacy.models import Channel, ConsentEvent, Purpose
from pipetower.privacy.services import NoticeKind, notice_send, unsubscribe_url
from tests.factories import UserFactory
from tests.privacy.conftest import grant

pytestmark = pytest.mark.django_db


def test_every_purpose_is_off_until_the_person_says_yes(user: User) -> None:
    assert consent_states(user=user) == {p.value: False for p in Purpose}
    for purpose in Purpose.values:
        assert processing_allowed(user=user, purpose=purpose) is False


def test_a_grant_is_recorded_with_purpose_channel_wording_and_time(user: User) -> None:
    event = consent_set(
        user=user,
        purpose=Purpose.NEWSLETTER,
        granted=True,
        channel=Channel.WEB,
        wording_version="2026-11-1",
    )
    assert (event.user, event.purpose, event.granted) == (user, "newsletter", True)
    assert (event.channel, event.wording_version) == ("web", "2026-11-1")
    assert event.created_at is not None
    assert processing_allowed(user=user, purpose=Purpose.NEWSLETTER) is True
    assert processing_allowed(user=user, purpose=Purpose.PRODUCT_SURVEYS) is False


def test_a_cookie_banner_choice_is_recorded_for_an_anonymous_visitor() -> None:
    consent_set(
        anonymous_id="c0ffee",
        purpose=Purpose.ANALYTICS_COOKIES,
        granted=True,
        channel=Channel.COOKIE_BANNER,
        wording_version="banner-1",
    )
    assert processing_allowed(user=None, anonymous_id="c0ffee", purpose="analytics_cookies")
    assert not processing_allowed(user=None, anonymous_id="c0ffee", purpose="ab_testing_cookies")
    assert not processing_allowed(user=None, anonymous_id="other", purpose="analytics_cookies")
    assert not processing_allowed(user=None, purpose="analytics_cookies")


def test_rapid_toggling_keeps_one_event_per_click_and_the_last_click_wins(user: User) -> None:
    clicks = [True, False, True, True, False, True, False]
    for granted in clicks:
        grant(user, Purpose.PRODUCT_SURVEYS, granted=granted)
    events = ConsentEvent.objects.filter(user=user, purpose=Purpose.PRODUCT_SURVEYS).order_by("id")
    assert [e.granted for e in events] == clicks
    assert consent_state(user=user, purpose=Purpose.PRODUCT_SURVEYS) is False
    grant(user, Purpose.PRODUCT_SURVEYS, granted=True)
    assert consent_state(user=user, purpose=Purpose.PRODUCT_SURVEYS) is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purpose": "spam"}, "Unknown purpose"),
        ({"channel": "fax"}, "Unknown consent channel"),
        ({"user": None}, "needs a person"),
        ({"wording_version": ""}, "version of the wording"),
    ],
)
def test_a_malformed_consent_choice_is_refused_with_a_message(
    user: User, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "user": user,
        "purpose": Purpose.NEWSLETTER,
        "granted": True,
        "channel": Channel.WEB,
        "wording_version": "v1",
        **kwargs,
    }
    with pytest.raises(ServiceError, match=message):
        consent_set(**args)  # type: ignore[arg-type]
    assert ConsentEvent.objects.count() == 0


def test_granting_and_withdrawing_are_each_one_click_on_the_same_page(
    client: Client, user: User
) -> None:
    client.force_login(user)
    page = client.get("/privacy/center/")
    assert b"Turn on: Newsletter" in page.content
    client.post("/privacy/center/consent/", {"purpose": "newsletter", "granted": "yes"})
    page = client.get("/privacy/center/")
    assert b"Turn off: Newsletter" in page.content
    client.post("/privacy/center/consent/", {"purpose": "newsletter", "granted": "no"})
    assert consent_state(user=user, purpose="newsletter") is False
    assert list(
        ConsentEvent.objects.filter(user=user).order_by("id").values_list("granted", "channel")
    ) == [(True, "web"), (False, "web")]
    history = client.get("/privacy/center/").content.decode()
    assert "Withdrawn" in history and "Agreed" in history


def test_a_tampered_choice_on_the_page_gets_a_message_not_an_error(
    client: Client, user: User
) -> None:
    client.force_login(user)
    response = client.post(
        "/privacy/center/consent/", {"purpose": "sell_my_data", "granted": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert b"That choice was not understood" in response.content
    assert ConsentEvent.objects.count() == 0


def test_the_unsubscribe_link_withdraws_with_one_click_and_records_the_channel(
    client: Client, user: User
) -> None:
    grant(user, Purpose.NEWSLETTER)
    path = unsubscribe_url(user=user, purpose=Purpose.NEWSLETTER).split("localhost:8000", 1)[-1]
    path = path[path.index("/privacy/") :]
    page = client.get(path)
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    assert consent_state(user=user, purpose="newsletter") is True  # a GET changes nothing
    done = client.post(path)  # mail clients' one-click POST carries no CSRF token
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert consent_state(user=user, purpose="newsletter") is False
    assert ConsentEvent.objects.filter(user=user).first().channel == "email_link"  # type: ignore[union-attr]


def test_a_forged_unsubscribe_link_is_refused_with_a_message(client: Client) -> None:
    response = client.post("/privacy/unsubscribe/forged-token/")
    assert response.status_code == 403
    assert b"This unsubscribe link is not valid" in response.content


def test_a_service_notice_goes_to_everyone_and_is_labelled(user: User) -> None:
    restricted = UserFactory(email="quiet@example.com")
    from pipetower.privacy.services import restriction_start

    restriction_start(user=restricted)
    mail.outbox.clear()
    sent = notice_send(
        kind=NoticeKind.SECURITY, subject="We rotated our keys", body="Nothing to do for you."
    )
    assert sent == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "quiet@example.com"]
    for message in mail.outbox:
        assert message.subject == "[Pipetower] Service notice: We rotated our keys"
        assert message.body.startswith("This is a service notice about a security matter.")
        assert "not marketing" in message.body


def test_a_service_notice_of_an_unknown_kind_is_refused(user: User) -> None:
    with pytest.raises(ServiceError, match="security, a policy or a product change"):
        notice_send(kind="promotion", subject="Sale", body="50% off")
    assert mail.outbox == []


def test_wording_versions_cover_every_purpose() -> None:
    assert set(WORDING_VERSIONS) == set(Purpose.values)

"""The Django admin sits behind Pipetower's own sign-in, two-factor step included."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.accounts.mfa.helpers import (
    fresh_period,
    give_totp,
    sign_in_with_password,
    totp_code,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> Any:
    return UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)


def test_the_admin_login_page_hands_over_to_the_pipetower_sign_in(client: Client) -> None:
    response = client.get(reverse("admin:login") + "?next=/admin/auth/")

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=/admin/auth/"


def test_the_admin_index_sends_a_signed_out_visitor_to_the_pipetower_sign_in(
    client: Client,
) -> None:
    first = client.get(reverse("admin:index"))
    second = client.get(first["Location"])

    assert second.status_code == 302
    assert second["Location"].startswith(reverse("account_login") + "?next=")


def test_a_foreign_next_address_is_not_followed(client: Client) -> None:
    response = client.get(reverse("admin:login") + "?next=https://evil.example/")

    assert response["Location"] == reverse("account_login") + "?next=/admin/"


def test_staff_with_two_factor_reach_the_admin_only_after_the_code(
    client: Client, staff: Any
) -> None:
    secret = give_totp(staff)

    sign_in_with_password(client, staff.email)
    assert client.get(reverse("admin:index")).status_code == 302, "password alone"

    fresh_period()
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert client.get(reverse("admin:index")).status_code == 200


def test_staff_without_two_factor_are_told_to_set_it_up_when_it_is_required(
    client: Client, staff: Any, settings: Any
) -> None:
    settings.ADMIN_REQUIRE_2FA = True
    sign_in_with_password(client, staff.email)

    response = client.get(reverse("admin:index"), follow=True)

    assert response.redirect_chain[-1][0] == reverse("mfa_index")
    assert "Set up two-factor authentication to use the admin" in response.content.decode()


def test_staff_with_two_factor_use_the_admin_when_it_is_required(
    client: Client, staff: Any, settings: Any
) -> None:
    settings.ADMIN_REQUIRE_2FA = True
    secret = give_totp(staff)
    sign_in_with_password(client, staff.email)
    fresh_period()
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    assert client.get(reverse("admin:index")).status_code == 200


def test_a_signed_in_person_who_is_not_staff_is_told_the_admin_is_not_for_them(
    client: Client, user: Any
) -> None:
    sign_in_with_password(client, user.email)

    response = client.get(reverse("admin:index"), follow=True)

    assert response.status_code == 403
    assert "The admin is for the people who operate this Pipetower" in response.content.decode()

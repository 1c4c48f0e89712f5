"""The staff back office for people."""

from __future__ import annotations

import pytest

from pipetower.accounts.models import User
from tests.factories import UserFactory


@pytest.fixture
def staff_client(client, db):
    admin = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_staff_list_people_by_email_and_name(staff_client):
    UserFactory(email="grace@example.com", name="Grace Hopper")
    html = staff_client.get("/admin/accounts/user/").content.decode()
    assert "grace@example.com" in html
    assert "Grace Hopper" in html


def test_staff_search_people_by_name_or_email(staff_client):
    UserFactory(email="grace@example.com", name="Grace Hopper")
    UserFactory(email="alan@example.com", name="Alan Turing")
    by_name = staff_client.get("/admin/accounts/user/", {"q": "hopper"}).content.decode()
    by_email = staff_client.get("/admin/accounts/user/", {"q": "alan@"}).content.decode()
    assert "grace@example.com" in by_name and "alan@example.com" not in by_name
    assert "alan@example.com" in by_email and "grace@example.com" not in by_email


def test_staff_open_a_person_with_sign_up_address_read_only(staff_client):
    person = UserFactory(email="grace@example.com", signup_ip="198.51.100.4")
    html = staff_client.get(f"/admin/accounts/user/{person.pk}/change/").content.decode()
    assert "198.51.100.4" in html
    assert 'name="signup_ip"' not in html
    assert 'name="email"' in html


def test_staff_add_a_person_by_email(staff_client):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Person@Example.com",
            "name": "New Person",
            "usable_password": "true",
            "password1": "plum tractor violet harbour 93",
            "password2": "plum tractor violet harbour 93",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(email="new.person@example.com").name == "New Person"


def test_staff_cannot_add_a_second_account_for_an_email(staff_client):
    UserFactory(email="grace@example.com")
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "GRACE@example.com",
            "name": "Other",
            "usable_password": "true",
            "password1": "plum tractor violet harbour 93",
            "password2": "plum tractor violet harbour 93",
        },
    )
    assert "Another account already uses this email address." in response.content.decode()
    assert User.objects.filter(email__iexact="grace@example.com").count() == 1

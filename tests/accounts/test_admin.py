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


def test_staff_open_a_person_read_only_except_staff_flags(staff_client):
    person = UserFactory(email="grace@example.com", signup_ip="198.51.100.4")
    html = staff_client.get(f"/admin/accounts/user/{person.pk}/change/").content.decode()
    assert "198.51.100.4" in html and "grace@example.com" in html
    for field in ("signup_ip", "email", "name", "is_active"):
        assert f'name="{field}"' not in html, field
    assert 'name="is_staff"' in html


def test_staff_flags_change_but_profile_and_state_do_not(staff_client):
    person = UserFactory(email="grace@example.com", name="Grace Hopper")
    response = staff_client.post(
        f"/admin/accounts/user/{person.pk}/change/",
        {"email": "evil@example.com", "name": "Renamed", "is_active": "", "is_staff": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    person.refresh_from_db()
    assert person.is_staff
    assert (person.email, person.name, person.is_active) == (
        "grace@example.com",
        "Grace Hopper",
        True,
    )


def test_accounts_are_not_added_deleted_or_given_a_password_in_the_back_office(staff_client):
    person = UserFactory(email="grace@example.com")
    assert staff_client.get("/admin/accounts/user/add/").status_code == 403
    assert staff_client.post(f"/admin/accounts/user/{person.pk}/delete/").status_code == 403
    response = staff_client.post(
        f"/admin/accounts/user/{person.pk}/password/",
        {
            "password1": "plum tractor violet harbour 93",
            "password2": "plum tractor violet harbour 93",
        },
    )
    assert response.status_code == 403
    person.refresh_from_db()
    assert not person.check_password("plum tractor violet harbour 93")
    assert User.objects.filter(pk=person.pk).exists()

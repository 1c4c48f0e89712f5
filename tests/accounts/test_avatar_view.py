"""Serving pictures: to the person and to the people they share a team with."""

from __future__ import annotations

import pytest

from pipetower.accounts import services
from tests.accounts.images import picture
from tests.factories import TeamFactory, UserFactory, member


@pytest.fixture
def ada_with_picture(user, media):
    return services.user_avatar_set(user=user, upload=picture())


def test_a_person_sees_their_own_picture(client, ada_with_picture):
    client.force_login(ada_with_picture)
    response = client.get(f"/account/avatar/{ada_with_picture.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content)[8:12] == b"WEBP"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_team_mate_sees_the_picture(client, team, ada_with_picture):
    mate = member(team)
    client.force_login(mate)
    assert client.get(f"/account/avatar/{ada_with_picture.pk}/").status_code == 200


def test_someone_from_another_team_gets_not_found(client, team, ada_with_picture):
    stranger = member(TeamFactory())
    client.force_login(stranger)
    assert client.get(f"/account/avatar/{ada_with_picture.pk}/").status_code == 404


def test_a_visitor_who_is_not_signed_in_gets_not_found(client, ada_with_picture):
    assert client.get(f"/account/avatar/{ada_with_picture.pk}/").status_code == 404


def test_no_picture_and_no_such_person_look_the_same(client, team, user):
    client.force_login(user)
    mate = member(team)
    assert client.get(f"/account/avatar/{mate.pk}/").status_code == 404
    assert client.get("/account/avatar/999999/").status_code == 404


def test_the_versioned_address_may_be_cached_privately_for_long(client, ada_with_picture):
    client.force_login(ada_with_picture)
    url = ada_with_picture.avatar_url
    assert "?v=" in url
    response = client.get(url)
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"


def test_the_plain_address_is_revalidated_and_answers_not_modified(client, ada_with_picture):
    client.force_login(ada_with_picture)
    url = f"/account/avatar/{ada_with_picture.pk}/"
    first = client.get(url)
    assert first["Cache-Control"] == "private, no-cache"
    again = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304


def test_a_new_picture_gets_a_new_address(client, ada_with_picture, media):
    before = ada_with_picture.avatar_url
    services.user_avatar_set(user=ada_with_picture, upload=picture("JPEG"))
    assert ada_with_picture.avatar_url != before


def test_the_picture_appears_in_the_page_header(client, ada_with_picture):
    client.force_login(ada_with_picture)
    html = client.get("/account/profile/").content.decode()
    assert f'<img src="{ada_with_picture.avatar_url}" alt="" class="avatar-xs">' in html


def test_staff_without_a_shared_team_get_not_found(client, ada_with_picture):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get(f"/account/avatar/{ada_with_picture.pk}/").status_code == 404

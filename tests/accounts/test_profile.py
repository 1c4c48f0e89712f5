"""The profile page: name and picture."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipetower.accounts import services
from pipetower.audit.models import AuditEvent
from pipetower.core.errors import ServiceError
from tests.accounts.conftest import input_tag
from tests.accounts.images import jpeg_with_location, noise_png, picture, png_bomb, upload


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def stored_picture(user) -> Image.Image:
    user.refresh_from_db()
    with user.avatar.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


# --- the page -----------------------------------------------------------------


def test_profile_page_shows_name_picture_and_links_to_email_and_password(signed_in):
    html = signed_in.get("/account/profile/").content.decode()
    assert "Your profile" in html
    assert 'value="Ada Lovelace"' in input_tag(html, "name")
    assert "autofocus" in input_tag(html, "name")
    assert 'enctype="multipart/form-data"' in html
    assert 'href="/accounts/email/"' in html
    assert 'href="/accounts/password/change/"' in html
    assert "No picture yet" in html


# --- name ---------------------------------------------------------------------


def test_changing_the_name_saves_it_and_records_it(signed_in, user):
    response = signed_in.post("/account/profile/", {"name": "  Augusta   Ada King  "})
    assert response["Location"] == "/account/profile/"
    user.refresh_from_db()
    assert user.name == "Augusta Ada King"
    event = AuditEvent.objects.get(verb="account.profile_updated")
    assert event.actor == user
    assert event.team is None
    assert event.data == {"fields": ["name"]}
    assert "Your name is saved." in signed_in.get("/account/profile/").content.decode()


def test_a_blank_name_is_refused_next_to_the_field(signed_in, user):
    response = signed_in.post("/account/profile/", {"name": "   "})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter your name" in html
    assert 'aria-invalid="true"' in input_tag(html, "name")
    user.refresh_from_db()
    assert user.name == "Ada Lovelace"
    assert not AuditEvent.objects.exists()


def test_a_too_long_name_is_refused(signed_in, user):
    response = signed_in.post("/account/profile/", {"name": "x" * 151})
    assert "at most 150 characters" in response.content.decode()
    user.refresh_from_db()
    assert user.name == "Ada Lovelace"


def test_saving_the_same_name_records_nothing(user):
    services.user_update_profile(user=user, name="Ada Lovelace")
    assert not AuditEvent.objects.exists()


def test_the_service_refuses_a_blank_name_too(user):
    with pytest.raises(ServiceError) as refused:
        services.user_update_profile(user=user, name=" \t ")
    assert refused.value.field == "name"


# --- picture: accepted ---------------------------------------------------------


@pytest.mark.parametrize(
    "sent", [picture("PNG"), picture("JPEG"), picture("WEBP")], ids=["png", "jpeg", "webp"]
)
def test_png_jpeg_and_webp_pictures_are_stored_as_webp(signed_in, user, media, sent):
    response = signed_in.post("/account/profile/avatar/", {"avatar": sent})
    assert response["Location"] == "/account/profile/"
    user.refresh_from_db()
    assert user.avatar.name.startswith(f"avatars/{user.pk}/")
    assert user.avatar.name.endswith(".webp")
    assert stored_picture(user).format == "WEBP"
    assert "Your picture is updated." in signed_in.get("/account/profile/").content.decode()


def test_a_large_picture_is_scaled_down_to_512_keeping_its_shape(user, media):
    services.user_avatar_set(user=user, upload=picture("PNG", (2000, 1000)))
    assert stored_picture(user).size == (512, 256)


def test_a_small_picture_is_not_enlarged(user, media):
    services.user_avatar_set(user=user, upload=picture("PNG", (40, 30)))
    assert stored_picture(user).size == (40, 30)


def test_metadata_such_as_location_is_removed(user, media):
    sent = jpeg_with_location()
    assert Image.open(io.BytesIO(sent.read())).getexif()  # the original has it
    sent.seek(0)

    services.user_avatar_set(user=user, upload=sent)

    stored = stored_picture(user)
    assert not stored.getexif()
    assert not {"exif", "xmp", "icc_profile"} & set(stored.info)


def test_transparency_is_kept(user, media):
    services.user_avatar_set(user=user, upload=picture("PNG", (20, 20), mode="RGBA"))
    assert stored_picture(user).mode == "RGBA"


def test_uploading_records_the_change(user, media):
    services.user_avatar_set(user=user, upload=picture())
    event = AuditEvent.objects.get(verb="account.profile_updated")
    assert event.data == {"fields": ["avatar"], "avatar": "added"}
    assert event.team is None


def test_replacing_the_picture_deletes_the_old_file(user, media, committed):
    services.user_avatar_set(user=user, upload=picture())
    old = user.avatar.name
    storage = user.avatar.storage
    with committed():
        services.user_avatar_set(user=user, upload=picture("JPEG"))
    assert user.avatar.name != old
    assert storage.exists(user.avatar.name)
    assert not storage.exists(old)
    assert AuditEvent.objects.filter(data__avatar="replaced").count() == 1


def test_removing_the_picture_deletes_its_file(signed_in, user, media, committed):
    services.user_avatar_set(user=user, upload=picture())
    old = user.avatar.name
    storage = user.avatar.storage
    with committed():
        response = signed_in.post("/account/profile/avatar/remove/")
    assert response["Location"] == "/account/profile/"
    user.refresh_from_db()
    assert not user.avatar
    assert not storage.exists(old)
    assert AuditEvent.objects.filter(data__avatar="removed").count() == 1


def test_removing_when_there_is_no_picture_changes_nothing(signed_in, user):
    assert signed_in.post("/account/profile/avatar/remove/").status_code == 302
    assert not AuditEvent.objects.exists()


def test_removing_needs_a_post(signed_in):
    assert signed_in.get("/account/profile/avatar/remove/").status_code == 405


# --- picture: refused ------------------------------------------------------------


REFUSED = {
    "not an image": (
        lambda: upload(b"just some notes\n", "notes.txt", "text/plain"),
        "Pictures must be PNG, JPEG or WebP files; this one is a .txt file.",
    ),
    "text pretending to be a png": (
        lambda: upload(b"<html><script>alert(1)</script></html>", "me.png"),
        "This file is not a picture Pipetower can use.",
    ),
    "a gif named .png": (
        lambda: picture("GIF", name="me.png"),
        "This file is not a picture Pipetower can use.",
    ),
    "a jpeg named .png": (
        lambda: picture("JPEG", name="me.png"),
        "The file name ends in .png but the file holds a JPEG picture.",
    ),
    "a gif": (
        lambda: picture("GIF"),
        "Pictures must be PNG, JPEG or WebP files; this one is a .gif file.",
    ),
    "oversized": (
        lambda: noise_png(2 * 1024 * 1024),
        "pictures can be at most 2 MB.",
    ),
    "decompression bomb": (
        lambda: png_bomb(20_000, 20_000),
        "far too many pixels",
    ),
    "too many pixels": (
        lambda: png_bomb(6_000, 6_000),
        "This picture is 6,000 by 6,000 pixels, too many to process.",
    ),
    "truncated": (
        lambda: upload(picture("PNG", (300, 300)).read()[:200], "me.png"),
        "damaged or incomplete",
    ),
    "empty": (lambda: upload(b"", "me.png"), "The file is empty."),
}


@pytest.mark.parametrize(("make", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_bad_pictures_get_a_clear_error_and_change_nothing(signed_in, user, media, make, message):
    services.user_avatar_set(user=user, upload=picture())
    before = user.avatar.name
    AuditEvent.objects.all().delete()

    response = signed_in.post("/account/profile/avatar/", {"avatar": make()})

    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert 'aria-invalid="true"' in input_tag(html, "avatar")
    assert "autofocus" in input_tag(html, "avatar")
    assert "autofocus" not in input_tag(html, "name")
    user.refresh_from_db()
    assert user.avatar.name == before
    assert sorted(p.name for p in (media / "avatars" / str(user.pk)).iterdir()) == [
        before.rsplit("/", 1)[1]
    ]
    assert not AuditEvent.objects.exists()


def test_submitting_without_a_file_asks_for_one(signed_in):
    response = signed_in.post("/account/profile/avatar/", {})
    assert "Choose a picture to upload." in response.content.decode()

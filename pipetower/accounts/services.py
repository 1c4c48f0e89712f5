"""Changes to a person's own account: name and picture.

Sign-up, sign-in, email and password changes are allauth's flows (see adapters.py).
"""

from __future__ import annotations

import io
import warnings
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from pipetower.accounts.models import User
from pipetower.audit.services import audit_record
from pipetower.core.errors import ServiceError

NAME_MAX_LENGTH = 150

# Picture formats accepted, by what the file's content says (Pillow's name)
# and by what its name says.
AVATAR_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}
AVATAR_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Decoding cost grows with pixels, not bytes: a few kilobytes of PNG can
# describe gigapixels. 25 megapixels covers any real photo that fits in 2 MB.
AVATAR_MAX_PIXELS = 25_000_000


def user_update_profile(*, user: User, name: str, ip: str | None = None) -> User:
    """Change the name shown to team mates."""
    name = " ".join(name.split())
    if not name:
        raise ServiceError(
            "Enter your name: it is how your team mates see you in Pipetower.", field="name"
        )
    if len(name) > NAME_MAX_LENGTH:
        raise ServiceError(f"Names can be at most {NAME_MAX_LENGTH} characters long.", field="name")
    if name == user.name:
        return user
    user.name = name
    user.save(update_fields=["name"])
    audit_record(
        actor=user,
        verb="account.profile_updated",
        team=None,
        target=user,
        ip=ip,
        data={"fields": ["name"]},
    )
    return user


def user_avatar_set(*, user: User, upload: File, ip: str | None = None) -> User:
    """Store a new picture, re-encoded as WebP; the previous one is deleted.

    Raises ServiceError (field "avatar") for anything that is not a PNG, JPEG or
    WebP picture of acceptable size, before anything changes.
    """
    data = _avatar_encode(upload)
    old_name = user.avatar.name if user.avatar else ""
    storage = user.avatar.storage
    # The name is chosen by the model's upload_to (random, per user).
    user.avatar.save("avatar.webp", ContentFile(data), save=False)
    new_name = str(user.avatar.name)
    try:
        with transaction.atomic():
            user.save(update_fields=["avatar"])
            audit_record(
                actor=user,
                verb="account.profile_updated",
                team=None,
                target=user,
                ip=ip,
                data={"fields": ["avatar"], "avatar": "replaced" if old_name else "added"},
            )
            if old_name:
                _delete_after_commit(storage, old_name)
    except Exception:
        storage.delete(new_name)  # the row never came to point at it
        user.avatar.name = old_name
        raise
    return user


def user_avatar_remove(*, user: User, ip: str | None = None) -> User:
    """Remove the picture and delete its file. Without a picture, nothing happens."""
    if not user.avatar:
        return user
    old_name = str(user.avatar.name)
    storage = user.avatar.storage
    with transaction.atomic():
        user.avatar = ""
        user.save(update_fields=["avatar"])
        audit_record(
            actor=user,
            verb="account.profile_updated",
            team=None,
            target=user,
            ip=ip,
            data={"fields": ["avatar"], "avatar": "removed"},
        )
        _delete_after_commit(storage, old_name)
    return user


def _delete_after_commit(storage: Storage, name: str) -> None:
    # Only once the row no longer points at the file: a rollback keeps both.
    transaction.on_commit(lambda: storage.delete(name), robust=True)


def _avatar_error(message: str) -> ServiceError:
    return ServiceError(message, code="invalid_avatar", field="avatar")


def _avatar_encode(upload: File) -> bytes:
    """Check an uploaded picture and return it as a metadata-free WebP of bounded size."""
    max_bytes: int = settings.AVATAR_MAX_BYTES
    side: int = settings.AVATAR_MAX_SIDE
    allowed = ", ".join(AVATAR_FORMATS.values())
    allowed_text = allowed.replace(", WebP", " or WebP")

    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    if size == 0:
        raise _avatar_error("The file is empty. Choose a PNG, JPEG or WebP picture.")
    if size > max_bytes:
        raise _avatar_error(
            f"This file is {_megabytes(size)}; pictures can be at most {_megabytes(max_bytes)}."
        )

    suffix = PurePosixPath(getattr(upload, "name", "") or "").suffix.lower()
    if suffix and suffix not in AVATAR_EXTENSIONS:
        raise _avatar_error(f"Pictures must be {allowed_text} files; this one is a {suffix} file.")

    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(upload, formats=list(AVATAR_FORMATS))
            width, height = image.size
            if width * height > AVATAR_MAX_PIXELS:
                raise _avatar_error(_too_many_pixels(width, height))
            if suffix and AVATAR_EXTENSIONS[suffix] != image.format:
                raise _avatar_error(
                    f"The file name ends in {suffix} but the file holds "
                    f"{_with_article(AVATAR_FORMATS.get(image.format or '', 'another'))} "
                    "picture. Upload it under a name that matches what it is."
                )
            if image.format == "JPEG":
                # Decode at a reduced scale when the picture is much larger than needed.
                image.draft("RGB", (side, side))
            image.load()
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _avatar_error(
            "This picture has far too many pixels to process. "
            f"Use a picture of at most {AVATAR_MAX_PIXELS // 1_000_000} megapixels."
        ) from None
    except UnidentifiedImageError:
        raise _avatar_error(
            f"This file is not a picture Pipetower can use. Choose a {allowed_text} picture."
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise _avatar_error(
            "This picture is damaged or incomplete and cannot be read. Try saving it again."
        ) from None

    picture: Image.Image = ImageOps.exif_transpose(image) or image
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or (
        picture.mode == "P" and "transparency" in picture.info
    )
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)

    # A fresh image carries pixels only: no EXIF, XMP, ICC or comments.
    clean = Image.new(picture.mode, picture.size)
    clean.paste(picture)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def _too_many_pixels(width: int, height: int) -> str:
    return (
        f"This picture is {width:,} by {height:,} pixels, too many to process. "
        f"Use a picture of at most {AVATAR_MAX_PIXELS // 1_000_000} megapixels."
    )


def _with_article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def email_confirmation_resend(*, request: Any, email: str) -> None:
    """Send the confirmation link again to an address that awaits confirmation.

    The answer is the same whether or not such an address exists (no account
    enumeration); allauth's `confirm_email` rate limit (one per address every
    three minutes) applies, and links already sent stay valid.
    """
    from allauth.account.internal.flows.email_verification import (
        send_verification_email_to_address,
    )
    from allauth.account.models import EmailAddress

    email = (email or "").strip()
    if not email or len(email) > 254:
        return
    address = (
        EmailAddress.objects.filter(email__iexact=email, verified=False, user__isnull=False)
        .select_related("user")
        .first()
    )
    if address is None or not address.user.is_active:
        return
    send_verification_email_to_address(request, address)

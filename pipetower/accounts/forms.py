from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

NAME_REQUIRED = "Enter your name: it is how your team mates see you in Pipetower."


def name_field(**kwargs: Any) -> forms.CharField:
    return forms.CharField(
        max_length=150,
        strip=True,
        error_messages={"required": NAME_REQUIRED},
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
        **kwargs,
    )


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form gains: the person's name, asked for first."""

    name = name_field(label="Your name")

    field_order = ("name", "email", "password1", "password2")

    def signup(self, request: Any, user: Any) -> None:
        """Nothing left to do: the account adapter's `save_user` stored the name."""


class ProfileForm(forms.Form):
    name = name_field(label="Name")


class AvatarForm(forms.Form):
    avatar = forms.FileField(
        label="New picture",
        error_messages={
            "required": "Choose a picture to upload.",
            "empty": "The file is empty. Choose a PNG, JPEG or WebP picture.",
        },
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit_mb = settings.AVATAR_MAX_BYTES / (1024 * 1024)
        side = settings.AVATAR_MAX_SIDE
        self.fields["avatar"].help_text = (
            f"PNG, JPEG or WebP, up to {limit_mb:g} MB. Pipetower scales it to at most "
            f"{side} by {side} pixels and removes its metadata (such as location)."
        )

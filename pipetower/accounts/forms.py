from __future__ import annotations

from typing import Any

from django import forms


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form gains: the person's name."""

    name = forms.CharField(max_length=150, label="Your name", strip=True)

    def signup(self, request: Any, user: Any) -> None:
        user.name = self.cleaned_data["name"]
        user.save(update_fields=["name"])

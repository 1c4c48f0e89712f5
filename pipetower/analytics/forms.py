from __future__ import annotations

from django import forms


class CookieChoiceForm(forms.Form):
    CHOICES = [
        ("accept_all", "Accept all"),
        ("reject_all", "Reject all"),
        ("choose", "Choose"),
        ("save", "Save my choices"),
    ]

    choice = forms.ChoiceField(
        choices=CHOICES,
        error_messages={"required": "Choose Accept all, Reject all or Save my choices."},
    )
    analytics = forms.BooleanField(
        required=False,
        label="Analytics cookies",
        help_text="Count visits per page and day, so we can see which pages help. "
        "No address, account or identifier is stored with the count.",
    )
    ab_testing = forms.BooleanField(
        required=False,
        label="A/B testing cookies",
        help_text="Show you one of two versions of some texts and remember which one.",
    )
    next = forms.CharField(required=False, max_length=2000)

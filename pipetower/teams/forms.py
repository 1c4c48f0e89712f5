"""Forms of the team pages: they parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from pipetower.teams.models import Role
from pipetower.teams.services import TEAM_NAME_MAX


class TeamForm(forms.Form):
    name = forms.CharField(
        label="Team name",
        max_length=TEAM_NAME_MAX,
        help_text="You can rename it later; the team's address stays the same.",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )


class TeamSecurityForm(forms.Form):
    require_2fa = forms.BooleanField(
        label="Require two-factor authentication",
        required=False,
        help_text="Members without it see a page that asks them to set it up instead of the "
        "team, and the API refuses their tokens for this team.",
    )

    def __init__(self, *args: Any, can_change: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_change:
            field = self.fields["require_2fa"]
            field.disabled = True
            field.help_text = "Only team owners can change this."


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
    )
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, roles: list[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["role"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(r.value, r.label) for r in roles]
        self.initial.setdefault("role", Role.VIEWER.value)

    def focus_first_error(self) -> None:
        """On a page where the form is not the main thing, take focus only to show errors."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["autofocus"] = True
                return


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)

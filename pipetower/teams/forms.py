"""Forms of the team pages: they parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from pipetower.teams import retention
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


def _bounded_int(label: str, low: int, high: int, unit: str, help_text: str) -> forms.IntegerField:
    between = f"Enter a whole number of {unit} from {low} to {high}."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        help_text=help_text,
        error_messages={
            "required": between,
            "invalid": between,
            "min_value": between,
            "max_value": between,
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class TeamRetentionForm(forms.Form):
    run_retention_days = _bounded_int(
        "Keep finished runs for (days)",
        retention.RUN_RETENTION_MIN_DAYS,
        retention.RUN_RETENTION_MAX_DAYS,
        "days",
        "A run, its results per server and their output are deleted this many days after "
        "the run ended. Runs still going are never deleted.",
    )
    output_limit_mb = _bounded_int(
        "Output kept per server (MB)",
        retention.OUTPUT_LIMIT_MIN_MB,
        retention.OUTPUT_LIMIT_MAX_MB,
        "MB",
        "Beyond this, the rest of a server's output in a run is not stored, and the run "
        "says so. Applies to runs that start after you save.",
    )


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

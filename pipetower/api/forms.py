from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from pipetower.api.models import ApiToken
from pipetower.api.services import TOKEN_NAME_MAX
from pipetower.teams.models import Team

MAX_EXPIRY_DAYS = 365


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=TOKEN_NAME_MAX,
        strip=True,
        help_text="What uses it, so you recognise it later: “deploy script”, “laptop CLI”.",
        error_messages={"required": "Give the token a name, so you can recognise it later."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        label="Scope",
        choices=[
            (ApiToken.Scope.READ, "Read only: GET requests only"),
            (ApiToken.Scope.WRITE, "Read and write: everything your team roles allow"),
        ],
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a scope.", "invalid_choice": "Choose a scope."},
    )
    team = forms.ChoiceField(
        label="Teams",
        required=False,
        choices=[("", "All my teams")],
        help_text="A token for one team cannot see or change anything in your other teams.",
        error_messages={"invalid_choice": "Choose one of your teams, or all of them."},
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        help_text=f"1 to {MAX_EXPIRY_DAYS} days. Leave empty for a token that does not expire.",
        error_messages={
            "invalid": "Enter a whole number of days, or leave it empty.",
            "min_value": "Enter at least 1 day, or leave it empty for no expiry.",
            "max_value": f"Enter at most {MAX_EXPIRY_DAYS} days, or leave it empty for no expiry.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, teams: Sequence[Team] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teams = {team.slug: team for team in teams}
        field = self.fields["team"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All my teams"), *((t.slug, t.name) for t in teams)]

    def chosen_team(self) -> Team | None:
        return self.teams.get(self.cleaned_data.get("team") or "")

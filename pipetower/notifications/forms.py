"""The notification rule form: fields only; the rules are checked by the services."""

from __future__ import annotations

from typing import Any

from django import forms

from pipetower.actions.forms import ErrorAttrsMixin
from pipetower.actions.models import Action
from pipetower.notifications.models import Channel, Format, NotificationRule, Recipients, When
from pipetower.teams.models import Team


class NotificationRuleForm(ErrorAttrsMixin, forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    action = forms.ModelChoiceField(
        queryset=Action.objects.none(),
        required=False,
        empty_label="Every action of the team",
        help_text="The runs this rule is about.",
    )
    when = forms.ChoiceField(choices=When.choices, initial=When.FAILURE, widget=forms.RadioSelect)
    channel = forms.ChoiceField(
        label="How", choices=Channel.choices, initial=Channel.EMAIL, widget=forms.RadioSelect
    )
    recipients = forms.ChoiceField(
        label="Email to",
        choices=Recipients.choices,
        initial=Recipients.ADMIN,
        required=False,
        help_text="Only members of the team are mailed, each on their own. "
        "Used when the rule sends email.",
    )
    url = forms.CharField(
        label="Webhook URL",
        max_length=2000,
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/pipetower"}),
        help_text="Used when the rule sends a webhook. Each POST is signed with the rule's "
        "secret (X-Pipetower-Signature: sha256=…).",
    )
    format = forms.ChoiceField(
        choices=Format.choices,
        initial=Format.JSON,
        required=False,
        help_text="Slack-compatible also suits Mattermost, Rocket.Chat and Discord's /slack URLs.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(
        self, *args: Any, team: Team, rule: NotificationRule | None = None, **kwargs: Any
    ) -> None:
        if rule is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {
                "name": rule.name,
                "action": rule.action_id,
                "when": rule.when,
                "channel": rule.channel,
                "recipients": rule.recipients or Recipients.ADMIN,
                "url": rule.url,
                "format": rule.format or Format.JSON,
                "enabled": rule.enabled,
            }
        super().__init__(*args, **kwargs)
        self.fields["action"].queryset = Action.objects.filter(team=team).order_by("name")  # type: ignore[attr-defined]

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "action": data["action"],
            "when": data["when"],
            "channel": data["channel"],
            "recipients": data.get("recipients") or "",
            "url": data.get("url") or "",
            "format": data.get("format") or "",
            "enabled": bool(data.get("enabled")),
        }

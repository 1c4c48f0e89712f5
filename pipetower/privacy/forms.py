from __future__ import annotations

from django import forms

from pipetower.privacy.models import DataSubjectRequest


class DataSubjectRequestForm(forms.Form):
    kind = forms.ChoiceField(
        label="What is your request about?",
        choices=[("", "Choose…"), *DataSubjectRequest.Kind.choices],
        error_messages={"required": "Choose what your request is about."},
    )
    details = forms.CharField(
        label="Your request",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What should we correct, or what is your request or complaint? "
        "Please do not include passwords or keys.",
        min_length=10,
        max_length=5000,
        error_messages={
            "min_length": "Tell us a little more, so we can act on your request "
            "(at least 10 characters).",
        },
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["kind"].widget.attrs["autofocus"] = True


class SupportGrantForm(forms.Form):
    """Grant Pipetower staff access to a team. The limits are the service's
    (`support_access.support_grant_create`); the form only parses."""

    scope = forms.ChoiceField(
        label="What may staff do?",
        choices=[
            ("read", "Read only: look at servers, actions, runs and their output"),
            ("fix", "Read and fix automation: also change actions and start or re-run runs"),
        ],
        widget=forms.RadioSelect,
        initial="read",
        error_messages={"required": "Choose what staff may do."},
    )
    days = forms.IntegerField(
        label="For how many days?",
        initial=1,
        help_text="At most 7 days. You can revoke it at any time.",
        error_messages={
            "required": "Choose how many days staff may have access.",
            "invalid": "Enter a whole number of days, from 1 to 7.",
        },
    )
    reason = forms.CharField(
        label="Reason or support ticket",
        max_length=300,
        help_text="For example: ticket #1234, the nightly backup action fails.",
        error_messages={
            "required": "Say why staff need access: a reason or a support ticket reference.",
            "max_length": "Keep the reason under 300 characters; a ticket reference is enough.",
        },
    )


class PublicRequestForm(DataSubjectRequestForm):
    """A request from someone who is not signed in: the address to answer comes first."""

    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        help_text="We email a code to this address to confirm it is yours, and answer there.",
        error_messages={
            "required": "Enter the email address we should answer.",
            "invalid": "Enter a valid email address, such as name@example.com.",
        },
    )
    field_order = ("email", "kind", "details")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].widget.attrs.pop("autofocus", None)
        self.fields["email"].widget.attrs.update({"autofocus": True, "autocomplete": "email"})


class RequestCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the email",
        max_length=12,
        error_messages={"required": "Type the code from the email we sent you."},
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["code"].widget.attrs.update(
            {"autofocus": True, "autocomplete": "one-time-code", "inputmode": "numeric"}
        )

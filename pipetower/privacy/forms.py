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

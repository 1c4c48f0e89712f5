from __future__ import annotations

from django import forms


class ContactForm(forms.Form):
    email = forms.EmailField(label="Your email address", help_text="Where we send our answer.")
    subject = forms.CharField(label="Subject", max_length=200)
    body = forms.CharField(
        label="Message", widget=forms.Textarea(attrs={"rows": 8}), max_length=10000
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        first = "subject" if self.initial.get("email") else "email"
        self.fields[first].widget.attrs["autofocus"] = True


YES_NO = [("yes", "Yes"), ("no", "No")]


class InterviewAnswerForm(forms.Form):
    attend = forms.ChoiceField(
        label="Will you take part in this interview?",
        choices=YES_NO,
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether you will take part."},
    )
    recording = forms.ChoiceField(
        label="May we record this interview?",
        choices=YES_NO,
        widget=forms.RadioSelect,
        help_text="Only for our notes about this conversation. Without your yes we do not "
        "record it. You can withdraw this later, and we then delete the recording.",
        error_messages={"required": "Say whether we may record the interview."},
    )

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

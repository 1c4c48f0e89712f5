"""Forms for the server pages. Field checks reuse the services' validators, so a
form error and an API error say the same words; secrets are never rendered back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict

from pipetower.core.errors import ServiceError
from pipetower.servers import inventory, services
from pipetower.servers.models import Server

MAX_KEY_FILE_BYTES = 64 * 1024


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a submitted value back into the page."""

    def format_value(self, value: Any) -> str | None:
        return None


def _service_check(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ServiceError as exc:
        raise forms.ValidationError(exc.message) from None


class ServerForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
        help_text="How the team will call it, for example web-1.",
    )
    host = forms.CharField(
        max_length=255,
        help_text="DNS name, IPv4 or IPv6 address, for example web-1.example.com or 2001:db8::10.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    port = forms.IntegerField(
        initial=22,
        min_value=1,
        max_value=65535,
        error_messages={
            "invalid": "The port must be a whole number from 1 to 65535.",
            "min_value": "The port must be a whole number from 1 to 65535.",
            "max_value": "The port must be a whole number from 1 to 65535.",
        },
    )
    username = forms.CharField(
        label="SSH user",
        max_length=64,
        help_text="The account Pipetower logs in as, for example deploy.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    tags = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Comma-separated, for example web, eu-west. Actions can target every server "
        "with a tag.",
    )
    auth_method = forms.ChoiceField(
        label="Log in with",
        choices=Server.AuthMethod.choices,
        initial=Server.AuthMethod.TEAM_KEY,
        widget=forms.RadioSelect,
    )
    private_key = forms.CharField(
        label="Private key",
        required=False,
        widget=SecretTextarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Paste an OpenSSH or PEM private key, or choose the file below. "
        "It is stored encrypted and never shown again.",
    )
    private_key_file = forms.FileField(label="…or private key file", required=False)
    passphrase = forms.CharField(
        label="Key passphrase",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Only if the key has one. Pipetower opens the key once and does not keep it.",
    )
    password = forms.CharField(
        label="SSH password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again.",
    )

    def __init__(self, *args: Any, server: Server | None = None, **kwargs: Any) -> None:
        self.server = server
        if server is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": server.name,
                "host": server.host,
                "port": server.port,
                "username": server.username,
                "tags": ", ".join(tag.name for tag in server.tags.all()),
                "auth_method": server.auth_method,
            }
        super().__init__(*args, **kwargs)
        if server is not None:
            if server.auth_method == Server.AuthMethod.PRIVATE_KEY:
                self.fields["private_key"].help_text = (
                    f"A key is stored ({server.private_key_type} "
                    f"{server.private_key_fingerprint}). Leave empty to keep it."
                )
            if server.auth_method == Server.AuthMethod.PASSWORD:
                self.fields["password"].help_text = "A password is stored. Leave empty to keep it."

    def clean_host(self) -> str:
        return str(_service_check(services.normalise_host, self.cleaned_data["host"]))

    def clean_username(self) -> str:
        return str(_service_check(services.validate_username, self.cleaned_data["username"]))

    def clean_tags(self) -> list[str]:
        return list(_service_check(services.parse_tags, self.cleaned_data.get("tags", "")))

    def clean_private_key_file(self) -> str:
        upload: UploadedFile | None = self.cleaned_data.get("private_key_file")
        if not upload:
            return ""
        if upload.size and upload.size > MAX_KEY_FILE_BYTES:
            raise forms.ValidationError("That file is too large to be an SSH private key.")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "That file is not a text private key (OpenSSH or PEM)."
            ) from None

    def credentials(self) -> services.Credentials:
        data = self.cleaned_data
        return services.Credentials(
            auth_method=data["auth_method"],
            private_key=data.get("private_key_file") or data.get("private_key") or "",
            passphrase=data.get("passphrase") or "",
            password=data.get("password") or "",
        )


class PinConfirmForm(forms.Form):
    fingerprint = forms.CharField(widget=forms.HiddenInput)


class RepinForm(forms.Form):
    fingerprint = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        label="I checked the new fingerprint on the server itself and want Pipetower to trust it.",
        error_messages={
            "required": "Tick the box to confirm that you checked the new fingerprint."
        },
    )


class KnownHostsForm(forms.Form):
    known_hosts = forms.CharField(
        label="known_hosts line or host public key",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autofocus": True}),
        help_text="For example the output of `ssh-keyscan -t ed25519 HOST` run from a trusted "
        "network, or the server's /etc/ssh/ssh_host_ed25519_key.pub.",
    )
    replace = forms.BooleanField(
        label="Replace the pinned host key (re-pin).",
        required=False,
    )


class ServerSettingsForm(forms.Form):
    trust_on_first_use = forms.BooleanField(
        label="Trust on first use",
        required=False,
        help_text="Pin a new server's host key automatically the first time Pipetower connects, "
        "and record that it did. Convenient on a network you trust; off, an admin confirms "
        "every fingerprint.",
    )


class ImportForm(forms.Form):
    """An inventory pasted or uploaded; an upload lands in the text box, so the preview
    and the confirmation post the same text and nothing typed is lost."""

    file = forms.FileField(
        required=False,
        label="Upload a file",
        help_text="An Ansible inventory (INI or YAML), an ssh_config or a CSV file.",
    )
    text = forms.CharField(
        required=False,
        strip=False,
        label="Or paste it",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "autocomplete": "off"}),
    )
    format = forms.ChoiceField(
        choices=[("auto", "Detect from the content"), *inventory.FORMATS.items()],
        initial="auto",
    )
    default_user = forms.CharField(
        required=False,
        max_length=64,
        label="Default SSH user",
        help_text="For servers the inventory gives no user (ansible_user, User or the user "
        "column), for example deploy.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload: UploadedFile | None = data.get("file")
        if upload is not None:
            if upload.size and upload.size > inventory.MAX_INVENTORY_BYTES:
                raise forms.ValidationError(
                    f"The file is larger than {inventory.MAX_INVENTORY_BYTES // 1000} kB. "
                    "Split it and import the parts one after the other."
                )
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError(
                    "The file is not UTF-8 text. Save it as UTF-8 and upload it again."
                ) from None
            # Shown again in the text box: the confirmation posts it from there.
            shown = QueryDict(mutable=True)
            shown.update(self.data)
            shown["text"] = data["text"]
            self.data = shown
        elif not (data.get("text") or "").strip():
            self.add_error("text", "Paste an inventory or choose a file to upload.")
        return data


class TagsBulkForm(forms.Form):
    server = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=False)
    add = forms.CharField(required=False, max_length=400, label="Add tag")
    remove = forms.CharField(required=False, max_length=400, label="Remove tag")
    query = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the service keeps only the team's own servers.
        values = self.data.getlist("server") if hasattr(self.data, "getlist") else []
        self.fields["server"].choices = [(v, v) for v in values]  # type: ignore[attr-defined]

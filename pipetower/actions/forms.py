"""Forms for actions and for starting a run. They check shapes; the services check
the rules and their ServiceError messages are put next to the field they name."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Prefetch
from django.forms import formset_factory
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from pipetower.actions import params, services
from pipetower.actions.models import Action, ParamKind, Run, RunStatus
from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.core.query import BoundedDateField
from pipetower.servers.models import Server, Tag
from pipetower.teams.models import Team


class ErrorAttrsMixin:
    """Marks fields with errors as aria-invalid and points them at their error list."""

    def mark_invalid(self) -> None:
        form: Any = self
        for name in form.errors:
            if name in form.fields:
                form.fields[name].widget.attrs["aria-invalid"] = "true"

    def add_service_error(self, exc: ServiceError) -> None:
        add_service_error(self, exc)  # type: ignore[arg-type]
        self.mark_invalid()


def _tag_text(tags: list[str]) -> str:
    return ", ".join(tags)


class ActionForm(ErrorAttrsMixin, forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    script = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        help_text="Runs with bash unless the first line is a shebang (#!/usr/bin/env python3). "
        "Parameters arrive as environment variables: PT_PARAM_<NAME>.",
    )
    run_as = forms.CharField(
        required=False,
        max_length=32,
        label="Run as user",
        help_text="Leave empty to run as the login user; otherwise `sudo -n -u USER` is used.",
    )
    timeout_seconds = forms.IntegerField(
        min_value=1, initial=300, label="Timeout per server (seconds)"
    )
    concurrency = forms.IntegerField(
        min_value=1, initial=10, label="Servers at once", help_text="How many servers run at once."
    )
    failure_limit = forms.IntegerField(
        min_value=1,
        required=False,
        label="Stop after this many failures",
        help_text="Servers not yet started are skipped once this many have failed. "
        "Empty: never stop early.",
    )
    default_servers = forms.ModelMultipleChoiceField(
        queryset=Server.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    default_tags = forms.CharField(
        required=False, help_text="Tags, separated by commas: every server with one of them."
    )
    requires_approval = forms.BooleanField(
        required=False,
        label="Requires approval",
        help_text="Each run waits until another admin or owner (not the person who started "
        "it) approves it on the Approvals page.",
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        servers = Server.objects.filter(team=team).order_by("name")
        self.fields["default_servers"].queryset = servers  # type: ignore[attr-defined]
        if not servers.exists():
            self.fields[
                "default_servers"
            ].help_text = "No servers in this team yet: add servers first, or target them by tag."

    @classmethod
    def initial_for(cls, action: Action) -> dict[str, Any]:
        return {
            "name": action.name,
            "description": action.description,
            "script": action.script,
            "run_as": action.run_as,
            "timeout_seconds": action.timeout_seconds,
            "concurrency": action.concurrency,
            "failure_limit": action.failure_limit,
            "default_servers": list(action.default_servers.all()),
            "default_tags": _tag_text(action.default_tags),
            "requires_approval": action.requires_approval,
        }

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "script": data["script"],
            "run_as": data["run_as"],
            "timeout_seconds": data["timeout_seconds"],
            "concurrency": data["concurrency"],
            "failure_limit": data["failure_limit"],
            "default_server_ids": [s.pk for s in data["default_servers"]],
            "default_tags": [t for t in data["default_tags"].split(",") if t.strip()],
            "requires_approval": data["requires_approval"],
        }


class ParameterForm(forms.Form):
    name = forms.CharField(max_length=40, required=False)
    label = forms.CharField(max_length=100, required=False)
    kind = forms.ChoiceField(choices=ParamKind.choices, initial=ParamKind.STRING, label="Type")
    required = forms.BooleanField(required=False)
    default = forms.CharField(
        required=False,
        max_length=4000,
        help_text="For a secret, leave empty to keep the stored default.",
    )
    choices = forms.CharField(
        required=False, max_length=2000, help_text="For a choice: options separated by commas."
    )
    help = forms.CharField(required=False, max_length=300, label="Help text")
    min = forms.IntegerField(
        required=False, label="Minimum", help_text="For an integer: the smallest value allowed."
    )
    max = forms.IntegerField(
        required=False, label="Maximum", help_text="For an integer: the largest value allowed."
    )


ParameterFormSet = formset_factory(ParameterForm, extra=2, can_delete=True, max_num=50)


def parameters_initial(action: Action | None) -> list[dict[str, Any]]:
    if action is None:
        return []
    rows = []
    for spec in action.parameters:
        default = spec.get("default")
        if spec["kind"] == ParamKind.SECRET:
            default = ""
        elif isinstance(default, bool):
            default = "true" if default else "false"
        rows.append(
            {
                "name": spec["name"],
                "label": spec.get("label", ""),
                "kind": spec["kind"],
                "required": spec.get("required", False),
                "default": "" if default is None else str(default),
                "choices": ", ".join(spec.get("choices", [])),
                "help": spec.get("help", ""),
                "min": spec.get("min"),
                "max": spec.get("max"),
            }
        )
    return rows


def parameters_from_formset(
    formset: Any, *, keep_secrets: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    keep = keep_secrets or {}
    specs = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if not data.get("name") or data.get("DELETE"):
            continue
        default: Any = data.get("default", "")
        if data["kind"] == ParamKind.SECRET and not default:
            default = keep.get(data["name"], "")
        specs.append(
            {
                "name": data["name"],
                "label": data.get("label", ""),
                "kind": data["kind"],
                "required": data.get("required", False),
                "default": default,
                "choices": [c for c in data.get("choices", "").split(",") if c.strip()],
                "help": data.get("help", ""),
                "min": data.get("min"),
                "max": data.get("max"),
            }
        )
    return specs


def _field_text(value: Any) -> str:
    """A stored value as a form field shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class RunForm(ErrorAttrsMixin, forms.Form):
    """Targets and one field per parameter of the action, pre-filled with the
    action's defaults, or with a finished run's targets and values (`again_of`).

    What is sent is what runs: nothing is filled in after submit. The checks
    (targets chosen, required values, types, bounds) are `services.run_start`'s,
    shown next to the field they are about. A secret is never put back into the
    page: a stored one is used only while its "keep" box stays ticked.
    """

    servers = forms.ModelMultipleChoiceField(
        queryset=Server.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    tags = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Every server with the tag."
    )

    def __init__(
        self, *args: Any, action: Action, again_of: Run | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        team = action.team
        self.action = action
        self.again_of = again_of
        self.servers_gone: list[str] = []
        servers = self.fields["servers"]
        servers.queryset = Server.objects.filter(team=team).order_by("name")  # type: ignore[attr-defined]
        tag_names = Tag.objects.filter(team=team).order_by("name").values_list("name", flat=True)
        self.fields["tags"].choices = [(n, n) for n in tag_names]  # type: ignore[attr-defined]
        if again_of is not None:
            kept, self.servers_gone = services.run_again_servers(run=again_of)
            # The run's values; a parameter added to the action since shows its default.
            values = {s["name"]: s.get("default") for s in action.parameters}
            values.update(services.run_again_values(run=again_of))
            run_secrets = set(again_of.secret_param_values())
            if not self.is_bound:
                self.initial.setdefault("servers", kept)
                self.initial.setdefault("tags", [])
        else:
            values = {s["name"]: s.get("default") for s in action.parameters}
            run_secrets = set()
            if not self.is_bound:
                self.initial.setdefault("servers", list(action.default_servers.all()))
                self.initial.setdefault("tags", list(action.default_tags))
        stored_defaults = action.secret_default_values()
        self.param_names: list[str] = []
        self.keep_names: dict[str, str] = {}  # parameter -> its "keep" box
        self.keep_is_default: set[str] = set()
        for spec in action.parameters:
            name = spec["name"]
            field_name = f"param_{name}"
            self.param_names.append(field_name)
            self.fields[field_name] = self._param_field(spec)
            if spec["kind"] == ParamKind.SECRET:
                shown = spec.get("label") or name
                if name in run_secrets:
                    label = f"Keep the value used in run #{again_of.pk} for {shown}"  # type: ignore[union-attr]
                elif stored_defaults.get(name):
                    label = f"Use the stored default for {shown}"
                    self.keep_is_default.add(name)
                else:
                    continue
                keep = f"keep_{name}"
                self.keep_names[name] = keep
                self.fields[keep] = forms.BooleanField(
                    required=False,
                    initial=True,
                    label=label,
                    help_text="Used only while this field is empty; the value is never shown.",
                )
            elif not self.is_bound:
                value = values.get(name)
                if value is None and spec["kind"] == ParamKind.BOOLEAN:
                    value = False  # a yes/no select always shows one of them
                self.initial.setdefault(field_name, _field_text(value))

    def picker_rows(self) -> list[tuple[Server, bool]]:
        """Every server of the team for the target picker, each with whether it is chosen,
        with its tags, pin and last check (two queries, however many servers)."""
        if self.is_bound:
            chosen = {str(value) for value in self.data.getlist("servers")}  # type: ignore[attr-defined]
        else:
            chosen = {str(getattr(s, "pk", s)) for s in self.initial.get("servers") or []}
        servers = (
            self.fields["servers"]
            .queryset.defer("private_key", "password")  # type: ignore[attr-defined]
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        )
        return [(server, str(server.pk) in chosen) for server in servers]

    @staticmethod
    def _param_field(spec: dict[str, Any]) -> forms.Field:
        label = spec.get("label") or spec["name"]
        help_text = spec.get("help", "")
        env = f"PT_PARAM_{spec['name'].upper()}"
        help_text = f"{help_text} (${env})" if help_text else f"${env}"
        kind = spec["kind"]
        required = bool(spec.get("required"))
        attrs: dict[str, Any] = {"required": True} if required else {}
        field: forms.Field
        # Every field is optional to Django: whether a value may be empty, and
        # which values are allowed, is decided once, by the service.
        if kind == ParamKind.INTEGER:
            bounds = {k: spec[k] for k in ("min", "max") if spec.get(k) is not None}
            field = forms.CharField(
                required=False, widget=forms.NumberInput(attrs={**attrs, **bounds, "step": 1})
            )
            if bounds:
                help_text += f" · {params.bounds_text(spec)}"
        elif kind == ParamKind.BOOLEAN:
            field = forms.ChoiceField(choices=[("true", "Yes"), ("false", "No")], required=False)
        elif kind == ParamKind.CHOICE:
            choices = [(c, c) for c in spec.get("choices", [])]
            field = forms.ChoiceField(
                choices=[("", "(none)"), *choices], required=False, widget=forms.Select(attrs)
            )
        elif kind == ParamKind.SECRET:
            field = forms.CharField(
                required=False,
                strip=False,
                widget=forms.PasswordInput(
                    render_value=False, attrs={**attrs, "autocomplete": "off"}
                ),
            )
        else:
            field = forms.CharField(required=False, strip=False, widget=forms.TextInput(attrs))
        if required:
            help_text += " · required"
        field.label = label
        field.help_text = help_text
        return field

    def param_rows(self) -> list[tuple[Any, Any]]:
        """(parameter field, its "keep" box or None), in the action's order."""
        rows = []
        for spec in self.action.parameters:
            keep = self.keep_names.get(spec["name"])
            rows.append((self[f"param_{spec['name']}"], self[keep] if keep else None))
        return rows

    def service_fields(self) -> dict[str, Any]:
        """Exactly what the form shows: every parameter's value, empty ones too;
        a secret left empty with its "keep" box ticked is left to the stored value."""
        data = self.cleaned_data
        values: dict[str, Any] = {}
        defaults: list[str] = []
        for spec in self.action.parameters:
            name = spec["name"]
            value = data.get(f"param_{name}")
            value = "" if value is None else value
            keep = self.keep_names.get(name)
            if value == "" and keep and data.get(keep):
                if name in self.keep_is_default:
                    defaults.append(name)
                continue  # run again: the service takes it from the earlier run
            values[name] = value
        return {
            "server_ids": [s.pk for s in data["servers"]],
            "tags": list(data["tags"]),
            "values": values,
            "default_params": defaults,
        }

    def add_service_error(self, exc: ServiceError) -> None:
        if isinstance(exc, params.InvalidValues):
            for problem in exc.problems:
                self.add_service_error(problem)
            return
        if exc.field and f"param_{exc.field}" in self.fields:
            self.add_error(f"param_{exc.field}", exc.message)
            self.mark_invalid()
            return
        if exc.field == "targets":
            self.add_error(None, exc.message)
            return
        super().add_service_error(exc)


class PlainSelect(forms.Select):
    """A <select> built in Python: Django renders a template per option, which
    costs more than the rest of the run history page once a team has many servers."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        selected = set(self.format_value(value))
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (str(key), " selected" if str(key) in selected else "", label)
                for key, label in self.choices
            ),
        )
        return format_html("<select{}>{}</select>", flatatt(final), options)


class RunFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, widget=PlainSelect)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *RunStatus.choices], widget=PlainSelect
    )
    server = forms.ChoiceField(required=False, widget=PlainSelect)
    who = forms.ChoiceField(required=False, label="Started by", widget=PlainSelect)
    since = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = BoundedDateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, label="Sort by", widget=PlainSelect)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from pipetower.actions.selectors import RUN_SORTS
        from pipetower.teams.models import Membership

        self.fields["sort"].choices = [  # type: ignore[attr-defined]
            (value, label) for value, (label, _order) in RUN_SORTS.items()
        ]
        self.fields["action"].choices = [  # type: ignore[attr-defined]
            ("", "Any action"),
            *Action.objects.filter(team=team).order_by("name").values_list("pk", "name"),
        ]
        self.fields["server"].choices = [  # type: ignore[attr-defined]
            ("", "Any server"),
            *Server.objects.filter(team=team).order_by("name").values_list("pk", "name"),
        ]
        self.fields["who"].choices = [  # type: ignore[attr-defined]
            ("", "Anyone"),
            *(
                (m.user_id, str(m.user))
                for m in Membership.objects.filter(team=team).select_related("user")
            ),
        ]


class ScheduleForm(RunForm):
    """A schedule: when (cron expression, time zone), and what runs: the run form's
    targets and parameter fields, checked by the same service as a manual run.

    Editing pre-fills the schedule's own targets and values; a secret stored in
    the schedule is never put back into the page, it is kept while its "keep" box
    stays ticked and the field is left empty."""

    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    cron = forms.CharField(
        max_length=100,
        error_messages={"required": "Enter a cron expression, for example '30 2 * * *'."},
        label="Cron expression",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="Five fields: minute, hour, day of month, month, day of week. "
        "'30 2 * * *' is every day at 02:30; '*/15 * * * 1-5' every 15 minutes on weekdays.",
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        initial="UTC",
        error_messages={
            "invalid_choice": "%(value)s is not a time zone Pipetower knows. Choose one from "
            "the list (IANA names such as Europe/Berlin or America/New_York).",
            "required": "Choose a time zone.",
        },
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    catch_up = forms.BooleanField(
        required=False,
        initial=True,
        label="After downtime, run once for the times missed",
        help_text="If Pipetower was not running at the scheduled times, start one catch-up "
        "run when it is back (never more than one). Unticked: skip the missed times.",
    )

    def __init__(self, *args: Any, action: Action, schedule: Any = None, **kwargs: Any) -> None:
        from pipetower.actions.cron import time_zone_names

        self.schedule = schedule
        if schedule is not None and not args and "data" not in kwargs:
            initial = kwargs.setdefault("initial", {})
            initial.update(
                name=schedule.name,
                cron=schedule.cron,
                timezone=schedule.timezone,
                enabled=schedule.enabled,
                catch_up=schedule.catch_up,
                servers=list(schedule.servers.all()),
                tags=list(schedule.tags),
            )
            for spec in action.parameters:
                if spec["name"] in schedule.params:
                    initial[f"param_{spec['name']}"] = _field_text(schedule.params[spec["name"]])
        super().__init__(*args, action=action, **kwargs)
        self.fields["timezone"].choices = [(z, z) for z in time_zone_names()]  # type: ignore[attr-defined]
        stored = schedule.secret_param_values() if schedule is not None else {}
        for spec in action.parameters:
            name = spec["name"]
            if spec["kind"] != ParamKind.SECRET or name not in stored:
                continue
            keep = f"keep_{name}"
            self.keep_names[name] = keep
            self.keep_is_default.discard(name)
            self.fields[keep] = forms.BooleanField(
                required=False,
                initial=True,
                label=f"Keep the value stored in this schedule for {spec.get('label') or name}",
                help_text="Used only while this field is empty; the value is never shown.",
            )

    def timing_fields(self) -> list[Any]:
        return [self["name"], self["cron"], self["timezone"]]

    def service_fields(self) -> dict[str, Any]:
        fields = super().service_fields()
        data = self.cleaned_data
        keep_secrets = [
            name
            for name, keep in self.keep_names.items()
            if name not in self.keep_is_default and data.get(keep) and not data.get(f"param_{name}")
        ]
        fields.update(
            name=data["name"],
            cron_expression=data["cron"],
            timezone_name=data["timezone"],
            enabled=data["enabled"],
            catch_up=data["catch_up"],
        )
        if self.schedule is not None:
            fields["keep_secrets"] = keep_secrets
        return fields

    def add_service_error(self, exc: ServiceError) -> None:
        # The schedule's own fields first: a parameter may be called "name" too, but
        # its problems come as InvalidValues, which the run form places.
        if not isinstance(exc, params.InvalidValues) and exc.field in ("cron", "timezone", "name"):
            self.add_error(exc.field, exc.message)
            self.mark_invalid()
            return
        super().add_service_error(exc)


class WebhookForm(RunForm):
    """A webhook: a name, whether deliveries must be signed, the run form's targets,
    and for each parameter either a fixed value or a path in the delivery's body
    ("ref", "head_commit.id") to take it from. Checked by the same service as a
    manual run; a stored secret value is never put back into the page."""

    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    require_signature = forms.BooleanField(
        required=False,
        initial=True,
        label="Require a signature (X-Hub-Signature-256)",
        help_text="Deliveries must be signed with the webhook's secret, as GitHub signs them. "
        "Without it, anyone who learns the URL can start runs.",
    )

    def __init__(self, *args: Any, action: Action, webhook: Any = None, **kwargs: Any) -> None:
        self.webhook = webhook
        if webhook is not None and not args and "data" not in kwargs:
            initial = kwargs.setdefault("initial", {})
            initial.update(
                name=webhook.name,
                enabled=webhook.enabled,
                require_signature=webhook.require_signature,
                servers=list(webhook.servers.all()),
                tags=list(webhook.tags),
            )
            for spec in action.parameters:
                name = spec["name"]
                if name in webhook.params:
                    initial[f"param_{name}"] = _field_text(webhook.params[name])
                if name in webhook.mapping:
                    initial[f"path_{name}"] = webhook.mapping[name]
        super().__init__(*args, action=action, **kwargs)
        stored = webhook.secret_param_values() if webhook is not None else {}
        for spec in action.parameters:
            name = spec["name"]
            self.fields[f"path_{name}"] = forms.CharField(
                required=False,
                max_length=200,
                label=f"or take {spec.get('label') or name} from the body at",
                help_text="A field of the delivery's JSON, names joined by dots: "
                "ref, head_commit.id. Leave empty to use the value above.",
                widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
            )
            if spec["kind"] != ParamKind.SECRET:
                continue
            # The action's stored default is not offered: a webhook runs with
            # exactly the values given here or in the body.
            self.keep_names.pop(name, None)
            self.fields.pop(f"keep_{name}", None)
            self.keep_is_default.discard(name)
            if name in stored:
                keep = f"keep_{name}"
                self.keep_names[name] = keep
                self.fields[keep] = forms.BooleanField(
                    required=False,
                    initial=True,
                    label=f"Keep the value stored in this webhook for {spec.get('label') or name}",
                    help_text="Used only while this field is empty; the value is never shown.",
                )

    def hook_rows(self) -> list[tuple[Any, Any, Any]]:
        """(fixed value field, its "keep" box or None, body path field), in order."""
        rows: list[tuple[Any, Any, Any]] = []
        for spec in self.action.parameters:
            name = spec["name"]
            keep = self.keep_names.get(name)
            rows.append((self[f"param_{name}"], self[keep] if keep else None, self[f"path_{name}"]))
        return rows

    def service_fields(self) -> dict[str, Any]:
        fields = super().service_fields()
        data = self.cleaned_data
        mapping = {
            spec["name"]: data[f"path_{spec['name']}"].strip()
            for spec in self.action.parameters
            if data.get(f"path_{spec['name']}", "").strip()
        }
        # An empty field of a parameter taken from the body is not a value; a filled
        # one is sent, and the service refuses the pair with its own message.
        values = {k: v for k, v in fields["values"].items() if k not in mapping or v != ""}
        keep_secrets = [
            name
            for name, keep in self.keep_names.items()
            if name not in mapping and data.get(keep) and not data.get(f"param_{name}")
        ]
        result: dict[str, Any] = {
            "name": data["name"],
            "enabled": data["enabled"],
            "require_signature": data["require_signature"],
            "server_ids": fields["server_ids"],
            "tags": fields["tags"],
            "values": values,
            "mapping": mapping,
        }
        if self.webhook is not None:
            result["keep_secrets"] = keep_secrets
        return result

    def add_service_error(self, exc: ServiceError) -> None:
        if not isinstance(exc, params.InvalidValues) and exc.field in ("name", "mapping"):
            self.add_error("name" if exc.field == "name" else None, exc.message)
            self.mark_invalid()
            return
        super().add_service_error(exc)

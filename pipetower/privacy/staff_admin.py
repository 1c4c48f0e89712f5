"""The back office never shows a team's content, and never writes it.

`TeamContentAdmin` is the base of every admin for a model that belongs to a
team (servers, actions, runs, members, invitations, the activity log, ...). It
works out what it may show from the model itself, so a field added later is
hidden without anyone remembering to hide it:

- shown: numbers, dates, booleans, fields with fixed choices (a status, a
  role), and links to the team and to accounts;
- never shown: text of any kind (names, scripts, hosts, output, parameters,
  audit details, secrets), files, and links to other team objects (whose name
  is content too). A model may list text fields that are not content
  (`shown_text_fields`, e.g. the reason a team gave for support access);
- the page titles, breadcrumbs and history name an object by its kind and
  number, never by its name (`str(obj)` is often content);
- nothing can be added, changed or deleted here: changes go through the
  team's own pages and their services, where they are checked and audited.

Staff who need to see content ask the team for support access
(`privacy.support_access`) and use the team's pages under it.
`tests/privacy/test_staff_admin.py` plants a marker in every text field of
every team model and checks no back-office page shows it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse

from pipetower.teams.models import Team

TEXT_FIELDS = (
    models.CharField,
    models.TextField,
    models.JSONField,
    models.BinaryField,
    models.FileField,
    models.GenericIPAddressField,
)


def _user_model() -> Any:
    from django.apps import apps

    return apps.get_model(settings.AUTH_USER_MODEL)


def metadata_field_names(model: type[models.Model], shown_text: tuple[str, ...] = ()) -> list[Any]:
    """The concrete fields of `model` that hold no team content."""
    names = []
    for field in model._meta.concrete_fields:
        if field.is_relation:
            if field.related_model is Team or field.related_model is _user_model():
                names.append(field.name)
            continue
        if isinstance(field, TEXT_FIELDS) and not field.choices and field.name not in shown_text:
            continue
        names.append(field.name)
    return names


class _Label:
    """Stands in for an object in the admin's titles: its kind and number only."""

    def __init__(self, model: type[models.Model], object_id: str) -> None:
        self.pk = object_id
        self._text = f"{model._meta.verbose_name} #{object_id}"

    def __str__(self) -> str:
        return self._text


class TeamContentAdmin(admin.ModelAdmin):
    """Read-only, content-free back office for a model owned by a team."""

    shown_text_fields: tuple[str, ...] = ()
    actions = None
    view_on_site = False

    def _metadata(self) -> list[Any]:
        return metadata_field_names(self.model, self.shown_text_fields)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._metadata()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self._metadata()

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return []

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        fields = [name for name in self._metadata() if name != "id"]
        return ["id", *fields[:8]]

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> list[Any]:
        return ["id"]

    def get_search_fields(self, request: HttpRequest) -> list[Any]:
        # Searching content would reveal it one guess at a time.
        return ["team__name", "team__slug"] if self._has_team_field() else []

    def _has_team_field(self) -> bool:
        return any(
            f.is_relation and f.related_model is Team and f.name == "team"
            for f in self.model._meta.concrete_fields
        )

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return []

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        label = _Label(self.model, object_id)
        context = {"original": label, "subtitle": str(label), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        label = _Label(self.model, object_id)
        context = {"object": label, "title": f"Change history: {label}", **(extra_context or {})}
        return super().history_view(request, object_id, context)

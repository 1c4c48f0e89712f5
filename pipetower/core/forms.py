"""Helpers shared by every app's forms."""

from __future__ import annotations

from django import forms
from django.forms.boundfield import BoundField
from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape

from pipetower.core.errors import ServiceError


def add_service_error(form: forms.BaseForm, exc: ServiceError) -> None:
    """Show a service's refusal next to the field it is about, or above the form
    when the form has no such field."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


class EscapedBoundField(BoundField):
    """A bound field whose help text is escaped.

    Django's form templates print `{{ field.help_text|safe }}`, because help texts
    are usually written by developers. Pipetower also builds help texts from what
    people type (an action parameter's help), so every help text is escaped here,
    once, for every template (Django's, allauth's, the admin's forms, ours): plain
    text shows literally, and only a string a developer marked safe on purpose
    (`format_html`, `mark_safe`) keeps its markup.
    """

    def __init__(self, form: forms.BaseForm, field: forms.Field, name: str) -> None:
        super().__init__(form, field, name)
        self.help_text = conditional_escape(field.help_text or "")


class FormRenderer(DjangoTemplates):
    """Django's default renderer, with `EscapedBoundField` for every form."""

    bound_field_class = EscapedBoundField

"""Helpers shared by every app's forms."""

from __future__ import annotations

import functools

from django import forms
from django.forms.boundfield import BoundField
from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

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
        help_text = field.help_text or ""
        if str(help_text) in _django_markup_help_texts():
            help_text = mark_safe(help_text)  # noqa: S308 - a Django constant, not typed by anyone
        self.help_text = conditional_escape(help_text)


@functools.cache
def _django_markup_help_texts() -> frozenset[str]:
    """Help texts Django itself writes with markup in a plain string (the back
    office's password form warns in a list)."""
    from django.contrib.auth.forms import AdminPasswordChangeForm

    return frozenset({str(AdminPasswordChangeForm.usable_password_help_text)})


class FormRenderer(DjangoTemplates):
    """Django's default renderer, with `EscapedBoundField` for every form."""

    bound_field_class = EscapedBoundField

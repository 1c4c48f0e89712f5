"""Helpers shared by every app's forms."""

from __future__ import annotations

from django import forms

from pipetower.core.errors import ServiceError


def add_service_error(form: forms.BaseForm, exc: ServiceError) -> None:
    """Show a service's refusal next to the field it is about, or above the form
    when the form has no such field."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)

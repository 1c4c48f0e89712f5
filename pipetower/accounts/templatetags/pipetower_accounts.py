"""Template helpers for Pipetower's rendering of allauth's forms."""

from __future__ import annotations

from django import template
from django.forms import BaseForm, BoundField

register = template.Library()


@register.filter
def focus_first(form: BaseForm) -> list[BoundField]:
    """The form's fields, with autofocus on the first one that has an error, else the first."""
    fields = list(form)
    usable = [f for f in fields if not f.is_hidden and not f.field.disabled]
    for bound in usable:
        bound.field.widget.attrs.pop("autofocus", None)
    target = next((f for f in usable if f.errors), usable[0] if usable else None)
    if target is not None:
        target.field.widget.attrs["autofocus"] = True
    return fields

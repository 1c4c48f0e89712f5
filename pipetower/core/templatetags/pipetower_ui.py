"""Small wording helpers shared by every page (times, labels)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """'just now' for the last minute, else '5 minutes ago' (never '0 minutes ago')."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def param_kind_label(kind: str) -> str:
    """The word the action form uses for a parameter type ('Text', not 'string')."""
    from pipetower.actions.models import ParamKind

    try:
        return str(ParamKind(kind).label)
    except ValueError:
        return kind


@register.simple_tag
def audit_sentence(event: object, team_slug: str) -> object:
    """An audit event in words with its link (pipetower.audit.wording)."""
    from pipetower.audit.wording import describe

    return describe(event, team_slug=team_slug)  # type: ignore[arg-type]

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


@register.filter
def second_factors(user: object) -> set[str]:
    """The second steps this person can use now: 'totp', 'webauthn', 'recovery_codes'
    (the last only while unused codes remain). Pages offer only these."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    if getattr(user, "pk", None) is None:
        return set()
    found: set[str] = set()
    for authenticator in Authenticator.objects.filter(user_id=user.pk):  # type: ignore[attr-defined]
        if authenticator.type == Authenticator.Type.RECOVERY_CODES:
            if RecoveryCodes(authenticator).get_unused_codes():
                found.add("recovery_codes")
        else:
            found.add(str(authenticator.type))
    return found

"""Reads of accounts, with the check of who may see whom."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from pipetower.accounts.models import User


def user_get_visible(*, viewer: Any, user_id: int) -> User:
    """The person with this id, if the viewer is that person or shares a team with them.

    Missing and not visible answer the same 404, so ids reveal nothing.
    """
    if not getattr(viewer, "is_authenticated", False):
        raise Http404("No such person.")
    if viewer.pk == user_id:
        return User.objects.get(pk=user_id)
    person = (
        User.objects.filter(pk=user_id, is_active=True, memberships__team__memberships__user=viewer)
        .distinct()
        .first()
    )
    if person is None:
        raise Http404("No such person.")
    return person

"""Reads of API tokens. A person only ever sees their own tokens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from pipetower.api.models import ApiToken


def api_tokens_for_user(*, user: Any) -> QuerySet[ApiToken]:
    if not getattr(user, "is_authenticated", False):
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).select_related("team").order_by("-created_at", "-id")


def api_token_get_for_user(*, user: Any, token_id: int) -> ApiToken:
    """The user's token with this id, or 404 (also for someone else's token)."""
    try:
        return api_tokens_for_user(user=user).get(pk=token_id)
    except (ApiToken.DoesNotExist, ValueError, TypeError):
        raise Http404("No such token.") from None

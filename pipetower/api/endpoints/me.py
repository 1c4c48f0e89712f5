"""`/me`: the person calling."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from pipetower.accounts.services import user_update_profile
from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.schemas import MeOut, MeUpdateIn
from pipetower.core.http import client_ip

router = Router(tags=["me"])


@router.get("/me", response=with_errors({200: MeOut}, 400, 401, 429), operation_id="me_get")
def me_get(request: HttpRequest) -> Any:
    """Your account."""
    return principal(request).user


@router.patch(
    "/me", response=with_errors({200: MeOut}, 400, 401, 403, 422, 429), operation_id="me_update"
)
def me_update(request: HttpRequest, payload: MeUpdateIn) -> Any:
    """Change your name."""
    caller = principal(request)
    return user_update_profile(user=caller.user, name=payload.name, ip=client_ip(request))

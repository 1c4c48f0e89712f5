"""`/tokens`: the caller's personal API tokens. Changing them needs write scope."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status

from pipetower.api.auth import principal
from pipetower.api.endpoints.common import with_errors
from pipetower.api.pagination import Page, PageParams, paginate
from pipetower.api.schemas import TokenCreatedOut, TokenCreateIn, TokenOut
from pipetower.api.selectors import api_token_get_for_user, api_tokens_for_user
from pipetower.api.services import api_token_create, api_token_revoke
from pipetower.core.errors import ServiceError
from pipetower.teams.models import Team

router = Router(tags=["tokens"])


@router.get(
    "/tokens",
    response=with_errors({200: Page[TokenOut]}, 400, 401, 404, 422, 429),
    operation_id="tokens_list",
)
def token_list(request: HttpRequest, pagination: Query[PageParams]) -> dict[str, object]:
    """Your API tokens, newest first. The token itself is never shown again."""
    return paginate(request, api_tokens_for_user(user=principal(request).user), pagination)


@router.post(
    "/tokens",
    response=with_errors({201: TokenCreatedOut}, 400, 401, 403, 422, 429),
    operation_id="tokens_create",
)
def token_create(request: HttpRequest, payload: TokenCreateIn) -> Status[dict[str, object]]:
    """Create a token. The answer's `token` is the only time it is shown: store it now.

    `team` limits it to one of your teams (other teams answer 404 to it). A
    token made with another token expires no later than that token does, and
    a token limited to a team can only make tokens for that team.
    """
    caller = principal(request)
    expires_at = (
        timezone.now() + timedelta(days=payload.expires_in_days)
        if payload.expires_in_days
        else None
    )
    team = None
    if payload.team:
        team = Team.objects.filter(slug=payload.team, memberships__user=caller.user).first()
        if team is None:
            raise ServiceError(f"You are not in a team {payload.team!r}.", field="team")
    try:
        token, raw = api_token_create(
            user=caller.user,
            name=payload.name,
            scope=payload.scope,
            expires_at=expires_at,
            team=team,
            request=request,
            via_token=caller.token,
        )
    except ServiceError as error:
        if error.field == "expires_at":  # the API's field is expires_in_days
            error.field = "expires_in_days"
        raise
    data = TokenOut.model_validate(token).model_dump()
    return Status(201, {**data, "token": raw})


@router.delete(
    "/tokens/{token_id}",
    response=with_errors({204: None}, 400, 401, 403, 404, 429),
    operation_id="tokens_revoke",
)
def token_revoke(request: HttpRequest, token_id: int) -> Status[None]:
    """Revoke one of your tokens. Requests made with it are refused from now on."""
    caller = principal(request)
    token = api_token_get_for_user(user=caller.user, token_id=token_id)
    api_token_revoke(token=token, actor=caller.user, request=request)
    return Status(204, None)

"""The API tokens page: create (shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from pipetower.api.forms import TokenCreateForm
from pipetower.api.models import ApiToken
from pipetower.api.selectors import api_token_get_for_user, api_tokens_for_user
from pipetower.api.services import api_token_create, api_token_revoke
from pipetower.core.errors import ServiceError
from pipetower.teams.models import Team
from pipetower.teams.selectors import memberships_for_user

PAGE_SIZE = 25
FORM_FIELDS = {"name", "scope", "team", "expires_in_days"}


def _teams(request: HttpRequest) -> list[Team]:
    """The teams a token can be limited to: the person's own."""
    return [m.team for m in memberships_for_user(user=request.user)]


def _render(
    request: HttpRequest,
    *,
    form: TokenCreateForm | None = None,
    new_token: ApiToken | None = None,
    plaintext: str = "",
) -> HttpResponse:
    form = form or TokenCreateForm(teams=_teams(request))
    if not plaintext:
        # Focus the first field that needs attention, or the name when all is well.
        first = next((name for name in form.fields if name in form.errors), "name")
        form.fields[first].widget.attrs["autofocus"] = True
    page = Paginator(api_tokens_for_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context: dict[str, Any] = {
        "form": form,
        "page": page,
        "tokens": page.object_list,
        "new_token": new_token,
        "plaintext": plaintext,
    }
    return render(request, "api/token_list.html", context)


# The new token's value waits in the server-side session between the POST and the
# page that shows it, and is removed as that page is rendered: a reload shows the
# list without it and never creates a second token.
NEW_TOKEN_SESSION_KEY = "pipetower.api.new_token"


@login_required
@never_cache  # the answer may hold the token: no cache may keep it
def token_list(request: HttpRequest) -> HttpResponse:
    shown = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if isinstance(shown, dict):
        user: Any = request.user
        token = ApiToken.objects.filter(pk=int(shown.get("id", 0)), user=user).first()
        if token is not None:
            return _render(request, new_token=token, plaintext=str(shown.get("plaintext", "")))
    return _render(request)


@login_required
@never_cache  # the answer holds the token: no cache may keep it
def token_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("tokens:list")
    form = TokenCreateForm(request.POST, teams=_teams(request))
    if form.is_valid():
        days = form.cleaned_data["expires_in_days"]
        try:
            token, plaintext = api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                team=form.chosen_team(),
                request=request,
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in FORM_FIELDS else None, error.message)
        else:
            # Shown once, on the page this redirects to (see NEW_TOKEN_SESSION_KEY).
            request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "plaintext": plaintext}
            return redirect("tokens:list")
    return _render(request, form=form)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = api_token_get_for_user(user=request.user, token_id=token_id)
    was_active = token.revoked_at is None
    api_token_revoke(token=token, actor=request.user, request=request)
    if was_active:
        messages.success(request, f"Token “{token.name}” is revoked. It can no longer be used.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("tokens:list")

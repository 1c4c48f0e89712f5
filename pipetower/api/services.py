"""Personal API tokens: create, revoke, authenticate.

A token reads `ptk_<prefix>_<secret>`. The prefix (12 hex characters) finds the
row; the secret is 32 random bytes. Only the SHA-256 of the whole token is
stored, so the plaintext exists once: in the answer to its creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from pipetower.api.errors import Unauthenticated
from pipetower.api.models import ApiToken
from pipetower.audit.services import audit_record
from pipetower.core.errors import NotAllowed, ServiceError
from pipetower.teams.selectors import membership_of

TOKEN_PREFIX = "ptk"
PREFIX_HEX_CHARS = 12
SECRET_BYTES = 32
TOKEN_NAME_MAX = 100
# Recording use costs a write; once a minute is precise enough to answer
# "is this token still in use?" and keeps authentication a single read.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_TOKEN_RE = re.compile(
    rf"^{TOKEN_PREFIX}_(?P<prefix>[0-9a-f]{{{PREFIX_HEX_CHARS}}})_(?P<secret>[A-Za-z0-9_-]{{43}})$"
)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _generate() -> tuple[str, str]:
    prefix = secrets.token_hex(PREFIX_HEX_CHARS // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return prefix, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def api_token_create(
    *,
    user: Any,
    name: str,
    scope: str,
    expires_at: datetime | None = None,
    team: Any = None,
    request: HttpRequest | None = None,
    via_token: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user`. Returns the token and its plaintext, shown once.

    `via_token` is the token the request was made with, when it was: the new
    token then expires no later than it (and inherits its expiry when none is
    asked for), so a short-lived token cannot mint a permanent one. A token
    limited to one `team` (None: all the owner's teams) can only mint tokens
    limited to that same team (and does so when no team is asked for).
    """
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the token a name, so you can recognise it later.", field="name")
    if len(name) > TOKEN_NAME_MAX:
        raise ServiceError(f"Keep the name to {TOKEN_NAME_MAX} characters or fewer.", field="name")
    if scope not in ApiToken.Scope.values:
        raise ServiceError("Choose a scope: read or write.", field="scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry date must be in the future.", field="expires_at")
    if team is not None and membership_of(team=team, user=user) is None:
        raise ServiceError("Choose one of your teams, or all of them.", field="team")
    if via_token is not None and via_token.team_id is not None:
        team = team or via_token.team
        if team.pk != via_token.team_id:
            raise NotAllowed(
                "A token limited to one team can only create tokens limited to that team.",
                code="token_team_scope",
                field="team",
            )
    limit = via_token.expires_at if via_token is not None else None
    if limit is not None:
        if expires_at is not None and expires_at > limit:
            raise NotAllowed(
                "A token cannot create a token that outlives it. "
                f"Choose an expiry before {limit:%Y-%m-%d %H:%M} UTC.",
                code="expiry_too_late",
                field="expires_at",
            )
        expires_at = expires_at or limit

    for _attempt in range(5):
        prefix, raw = _generate()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    scope=scope,
                    team=team,
                    prefix=prefix,
                    token_hash=token_hash(raw),
                    expires_at=expires_at,
                )
                audit_record(
                    actor=user,
                    verb="api_token.created",
                    target=token,
                    request=request,
                    data={
                        "name": name,
                        "scope": scope,
                        "team": team.slug if team is not None else None,
                        "prefix": prefix,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                        "created_with": via_token.prefix if via_token is not None else None,
                    },
                )
        except IntegrityError:  # pragma: no cover - a 48-bit prefix collision
            continue
        return token, raw
    raise RuntimeError("Could not find a free token prefix.")  # pragma: no cover


def api_token_revoke(
    *, token: ApiToken, actor: Any, request: HttpRequest | None = None
) -> ApiToken:
    """Revoke `token` now. Revoking a revoked token changes nothing.

    Its owner may revoke it, and so may staff (from the admin, for a leaked token).
    """
    if token.user_id != getattr(actor, "pk", None) and not getattr(actor, "is_staff", False):
        raise NotAllowed("You can only revoke your own tokens.")
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            verb="api_token.revoked",
            target=token,
            request=request,
            data={"name": token.name, "prefix": token.prefix, "owner_id": token.user_id},
        )
    return token


def api_token_authenticate(*, raw_token: str, ip: str | None) -> ApiToken:
    """The active token matching `raw_token`, with its use recorded; else Unauthenticated.

    Unknown prefixes and wrong secrets get the same answer. Only someone who
    holds the whole token learns that it was revoked or has expired.
    """
    match = _TOKEN_RE.match(raw_token.strip())
    if match is None:
        raise Unauthenticated(
            "This is not a Pipetower API token. Tokens look like ptk_<prefix>_<secret>.",
            code="token_malformed",
        )
    token = (
        ApiToken.objects.select_related("user", "team").filter(prefix=match.group("prefix")).first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, token_hash(match.group(0))):
        raise Unauthenticated("This API token is not valid.", code="token_invalid")
    now = timezone.now()
    if token.revoked_at is not None:
        raise Unauthenticated("This API token has been revoked.", code="token_revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("This API token has expired.", code="token_expired")
    if not token.user.is_active:
        raise Unauthenticated(
            "The account this token belongs to is disabled.", code="account_disabled"
        )

    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION),
            pk=token.pk,
        ).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token


def api_token_team_refusal(*, token: ApiToken, team_slug: str | None) -> str | None:
    """Why `token` may not reach the team with this slug, or None when it may.

    A token limited to one team treats every other team as one the caller
    cannot see: the API answers 404, as for a team that does not exist.
    """
    if token.team_id is None or team_slug is None:
        return None
    if token.team is not None and token.team.slug == team_slug:
        return None
    return "No such team."

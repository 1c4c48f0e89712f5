"""What the API accepts and answers. Inputs refuse unknown fields; outputs never
carry secrets (token hashes, invitation tokens)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

# Audit event data, whose keys depend on the verb: scalars, lists of scalars, and
# objects of those. Not recursive, so that clients generated from the schema can
# type it; anything nested deeper is sent as its JSON text (see `shallow`).
Scalar = str | int | float | bool | None
Shallow = Scalar | list[Scalar]
DataValue = Shallow | dict[str, Shallow]


def shallow(value: Any, depth: int = 0) -> Any:
    """`value` within DataValue: what is nested deeper becomes its JSON text."""
    if isinstance(value, dict):
        if depth >= 1:
            return json.dumps(value, sort_keys=True, default=str)
        return {str(k): shallow(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if depth >= 1 and any(isinstance(v, dict | list | tuple) for v in value):
            return json.dumps(value, sort_keys=True, default=str)
        return [shallow(v, depth + 1) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Input(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- errors ------------------------------------------------------------------
class ErrorDetail(Schema):
    field: str | None = None
    location: str | None = None
    message: str
    type: str | None = None


class ErrorBody(Schema):
    code: str = Field(..., examples=["not_found"])
    message: str
    details: list[ErrorDetail]


class ErrorOut(Schema):
    error: ErrorBody


# --- people ------------------------------------------------------------------
class UserOut(Schema):
    id: int
    email: str
    name: str


class MeOut(UserOut):
    date_joined: datetime


class MeUpdateIn(Input):
    name: str = Field(..., min_length=1, max_length=150)


# --- teams -------------------------------------------------------------------
RoleName = Literal["owner", "admin", "operator", "viewer"]


class TeamOut(Schema):
    slug: str
    name: str
    role: RoleName = Field(..., description="Your role in this team.")
    created_at: datetime
    deletion_scheduled_for: datetime | None = Field(
        None,
        description="When an owner scheduled the team's deletion for; null when it is not. "
        "Until then no runs start. Deleting a team needs the web page (re-authentication).",
    )


class TeamCreateIn(Input):
    name: str = Field(..., min_length=1, max_length=100)


class TeamUpdateIn(Input):
    name: str = Field(..., min_length=1, max_length=100)


class RetentionKeptOut(Schema):
    title: str = Field(..., description="A kind of team content, from the data map.")
    period: str = Field(..., description="How long it is kept.")
    setting: str = Field("", description="The team setting that decides the period, if one does.")
    note: str = ""


class TeamRetentionOut(Schema):
    run_retention_days: int = Field(..., description="Days finished runs are kept.")
    output_limit_mb: int = Field(..., description="Output kept per server and run, in MB.")
    kept: list[RetentionKeptOut] = Field(
        ..., description="Everything the team keeps and for how long, generated from the data map."
    )


class TeamRetentionIn(Input):
    run_retention_days: int | None = Field(None, description="Days finished runs are kept.")
    output_limit_mb: int | None = Field(None, description="Output kept per server and run, in MB.")


class MemberOut(Schema):
    id: int = Field(..., description="The membership id, used in member URLs.")
    user: UserOut
    role: RoleName
    joined_at: datetime = Field(..., alias="created_at")


class MemberUpdateIn(Input):
    role: RoleName


class InvitationOut(Schema):
    id: int
    email: str
    role: RoleName
    state: Literal["pending", "accepted", "revoked", "expired"]
    invited_by: str | None = Field(None, description="Email of who sent it.")
    created_at: datetime
    sent_at: datetime
    expires_at: datetime

    @staticmethod
    def resolve_invited_by(obj: Any) -> str | None:
        return obj.invited_by.email if obj.invited_by_id else None


class InvitationCreateIn(Input):
    email: str = Field(..., min_length=3, max_length=254)
    role: RoleName = "viewer"


class AuditEventOut(Schema):
    id: int
    verb: str
    actor_id: int | None
    actor_label: str
    target_type: str
    target_id: str
    target_label: str
    ip: str | None
    data: dict[str, DataValue] = Field(
        ...,
        description="What the event records; the keys depend on the verb. Values nested "
        "deeper than an object of lists are given as their JSON text.",
    )
    created_at: datetime

    @staticmethod
    def resolve_data(obj: Any) -> dict[str, Any]:
        data = obj.get("data") if isinstance(obj, dict) else obj.data
        return {str(k): shallow(v) for k, v in (data or {}).items()}


# --- tokens ------------------------------------------------------------------
class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(..., description="The public part of the token, ptk_<prefix>_…")
    scope: Literal["read", "write"]
    team: str | None = Field(
        ..., description="Slug of the one team the token reaches; null for all your teams."
    )
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_team(obj: Any) -> str | None:
        team = obj.get("team") if isinstance(obj, dict) else getattr(obj, "team", None)
        # A token (its Team, or None), or an answer built from a dumped TokenOut (a slug).
        return team if team is None or isinstance(team, str) else str(team.slug)


class TokenCreateIn(Input):
    name: str = Field(..., min_length=1, max_length=100)
    scope: Literal["read", "write"] = "read"
    team: str | None = Field(
        None,
        max_length=100,
        description="Slug of one of your teams to limit the token to; omit for all your teams.",
    )
    expires_in_days: int | None = Field(
        None, ge=1, le=365, description="Days until the token expires; omit for no expiry."
    )


class TokenCreatedOut(TokenOut):
    token: str = Field(..., description="The token itself. Shown only in this answer.")

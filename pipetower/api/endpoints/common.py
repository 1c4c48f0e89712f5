"""Small helpers shared by the endpoint modules."""

from __future__ import annotations

from typing import Any

from pipetower.api.schemas import ErrorOut

ERROR_STATUSES = (401, 403, 404, 409, 410, 422, 429)


def with_errors(responses: dict[int, Any], *statuses: int) -> dict[int, Any]:
    """`responses` plus the error shape for each status (all of them when none are named)."""
    return {**responses, **dict.fromkeys(statuses or ERROR_STATUSES, ErrorOut)}

"""Small helpers shared by the endpoint modules."""

from __future__ import annotations

from typing import Any

from pipetower.api.schemas import ErrorOut

# 400: a body that is not JSON, or a value a service refuses (ServiceError).
ERROR_STATUSES = (400, 401, 403, 404, 409, 410, 422, 429)
# Answered by the API's own machinery before any endpoint code runs, so every
# operation can answer them: a NUL character anywhere in the request (400), no
# or a bad token (401) and the rate limit (429).
ALWAYS = (400, 401, 429)


def with_errors(responses: dict[int, Any], *statuses: int) -> dict[int, Any]:
    """`responses` plus the error shape for each status (all of them when none are named).

    400, 401 and 429 are always declared: the request checks, authentication and
    throttling answer them for every operation. tests/api/test_operations.py
    checks the rest (403 for writes, 404 under a path parameter, 422 for input).
    """
    named = statuses or ERROR_STATUSES
    return {**responses, **dict.fromkeys(sorted({*named, *ALWAYS}), ErrorOut)}

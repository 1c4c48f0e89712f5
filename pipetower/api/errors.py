"""The API's one error shape, and the handlers that produce it.

Every failure answers `{"error": {"code": ..., "message": ..., "details": [...]}}`,
whether it comes from authentication, a service, a missing object, input
validation, rate limiting or a bug.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from pipetower.core.errors import ServiceError

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("pipetower.api")

# A code for each status that has no more specific one.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    422: "validation_error",
    429: "rate_limited",
    500: "server_error",
}


class Unauthenticated(ServiceError):
    """No credentials, or credentials that cannot be accepted."""

    code = "unauthenticated"
    status = 401


def error_body(code: str, message: str, details: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)}}


def error_response(
    status: int, code: str, message: str, details: Iterable[dict[str, Any]] = ()
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="Pipetower API"'
    return response


def _service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    details = [{"field": exc.field, "message": exc.message}] if exc.field else []
    return error_response(exc.status, exc.code, exc.message, details)


def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    # Ninja raises its bare AuthenticationError when no credentials were sent.
    return error_response(
        401,
        "unauthenticated",
        "Authentication required: send `Authorization: Bearer <token>` with a Pipetower API token.",
    )


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    status = exc.status_code
    message = exc.message
    if status == 400 and message == "Cannot parse request body":
        message = "The request body is not valid JSON."
    response = error_response(status, STATUS_CODES.get(status, "error"), message)
    if isinstance(exc, Throttled):
        response = error_response(
            429, "rate_limited", "Too many requests. Slow down and try again shortly."
        )
        if exc.wait is not None:
            response["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    return response


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", str(exc) or "Not found.")


def _permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(403, "forbidden", str(exc) or "You do not have permission to do this.")


def _field_path(loc: tuple[Any, ...] | list[Any]) -> tuple[str, str]:
    """Split ninja's error location into (where, field): ("body", "role")."""
    where = str(loc[0]) if loc else ""
    rest = [str(part) for part in loc[1:]]
    if where == "body" and len(rest) > 1:
        rest = rest[1:]  # drop the name of the endpoint's body parameter
    return where, ".".join(rest)


def validation_details(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        where, field = _field_path(error.get("loc", ()))
        message = str(error.get("msg", "Invalid value."))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
            message = message[:1].upper() + message[1:]
        details.append(
            {
                "field": field or where,
                "location": where,
                "message": message,
                "type": error.get("type", "invalid"),
            }
        )
    return details


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = validation_details(exc.errors)
    fields = ", ".join(dict.fromkeys(d["field"] for d in details if d["field"]))
    message = f"Some fields are invalid: {fields}." if fields else "The request is invalid."
    return error_response(422, "validation_error", message, details)


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("Unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(
        500,
        "server_error",
        "Something went wrong on our side. The error has been logged; please try again.",
    )


def install_exception_handlers(api: NinjaAPI) -> None:
    # The most specific class wins (ninja walks each exception's MRO).
    handlers: list[tuple[type[Exception], Any]] = [
        (ServiceError, _service_error),
        (AuthenticationError, _authentication_error),
        (HttpError, _http_error),
        (Http404, _not_found),
        (PermissionDenied, _permission_denied),
        (ValidationError, _validation_error),
        (Exception, _unexpected),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)

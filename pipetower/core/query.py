"""One parser for the values people put in query strings, and one place for NUL.

Pages and the API read the same kinds of values (`rev=`, `after=`, `before=`,
`since=`, `until=`); each is parsed here, so odd input gets the same clear
refusal everywhere instead of a crash deeper down:

- whole numbers are ASCII digits only (`"²".isdigit()` is true in Python, and
  `int("²")` then fails), within a 64-bit column;
- dates stay between 1900-01-01 and 9998-12-31, so "the end of that day" and a
  conversion to UTC can always be computed;
- time-zone offsets stay within ±15:59, the range PostgreSQL stores (Python
  accepts up to ±23:59);
- NUL characters, which PostgreSQL refuses in text, are refused before any view
  runs: in the path, the query string, a posted form or a JSON body
  (`NulRefusalMiddleware`).

A refused value raises `BadQuery` (a `ServiceError` with status 400): the API
answers it in its JSON error shape, pages with an error page that says what is
wrong. Form fields and API schemas use the same checks through
`BoundedDateField` and `QueryDate`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from django import forms
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_date, parse_datetime
from pydantic import AfterValidator

from pipetower.core.errors import ServiceError

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)
MAX_OFFSET = timedelta(hours=15, minutes=59)
MAX_WHOLE = 2**63 - 1
ASCII_DIGITS = re.compile(r"[0-9]+")
ASCII_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
NUL = "\x00"


class BadQuery(ServiceError):
    """A query value that cannot be read. `field` names the parameter."""

    code = "bad_request"
    status = 400


def whole_number(text: str | None, *, name: str, default: int | None = None) -> int:
    """`text` as a non-negative integer; empty or missing gives `default` when there is one."""
    if not text and default is not None:
        return default
    text = text or ""
    if not ASCII_DIGITS.fullmatch(text) or int(text) > MAX_WHOLE:
        raise BadQuery(
            f"{name} must be a whole number written with the digits 0-9, not {text[:20]!r}.",
            field=name,
        )
    return int(text)


def cursor(text: str | None, *, name: str = "after") -> dict[int, int]:
    """`"12:40,13"` → {12: 40, 13: 0}: which targets' output the client follows
    and the last sequence number it has of each. Empty parts are skipped."""
    result: dict[int, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, _, seq = part.strip().partition(":")
        result[whole_number(target, name=name)] = whole_number(seq, name=name, default=0)
    return result


def date_in_range(value: date, *, name: str) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise BadQuery(
            f"{name} must be a date between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}.",
            field=name,
        )
    return value


def _instant_in_range(value: datetime, *, name: str) -> datetime:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise BadQuery(
            f"{name} has a time-zone offset beyond ±15:59; use one between -15:59 and +15:59.",
            field=name,
        )
    date_in_range(value.date(), name=name)
    return value if offset is not None else value.replace(tzinfo=UTC)


def instant(text: str, *, name: str) -> datetime | date:
    """A date (that whole day) or an ISO 8601 date and time; a time without a zone is UTC."""
    text = text.strip()
    message = (
        "Use a date (2026-01-31) or an ISO 8601 date and time (2026-01-31T09:00:00Z) "
        f"for {name}, written with the digits 0-9."
    )
    if not text.isascii():
        raise BadQuery(message, field=name)
    try:
        if ASCII_DATE.fullmatch(text):
            parsed_date = parse_date(text)
            if parsed_date is None:
                raise BadQuery(message, field=name)
            return date_in_range(parsed_date, name=name)
        parsed = parse_datetime(text)
    except ValueError:  # a well-formed but impossible value: 2026-02-30, +24:00
        raise BadQuery(message, field=name) from None
    if parsed is None:
        raise BadQuery(message, field=name)
    return _instant_in_range(parsed, name=name)


# --- the same checks for API schemas (pydantic) and forms ---------------------------


def _pydantic(check: Callable[..., Any], name: str) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return check(value, name=name)
        except BadQuery as exc:
            raise ValueError(exc.message) from None

    return validate


# A `date` in an API schema, refused (422) outside the supported range.
QueryDate = Annotated[date, AfterValidator(_pydantic(date_in_range, "The date"))]


class BoundedDateField(forms.DateField):
    """A form's date, refused outside the supported range with the same message."""

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str) and value.strip() and not value.strip().isascii():
            raise forms.ValidationError("Write the date with the digits 0-9.", code="invalid")
        parsed = super().to_python(value)
        if parsed is not None:
            try:
                date_in_range(parsed, name="The date")
            except BadQuery as exc:
                raise forms.ValidationError(exc.message, code="out_of_range") from None
        return parsed


# --- NUL, and the answer to a BadQuery on a page -----------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _pairs(data: Any) -> Iterable[tuple[str, str]]:
    for key in data:
        for value in data.getlist(key):
            yield key, value if isinstance(value, str) else ""


def nul_found(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character, or None."""
    if NUL in request.path:
        return "the address"
    if any(NUL in key or NUL in value for key, value in request.COOKIES.items()):
        return "a cookie"
    for key, value in _pairs(request.GET):
        if NUL in key or NUL in value:
            return "the query string"
    content_type = request.content_type or ""
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in _pairs(request.POST):
                if NUL in key or NUL in value:
                    return "the form"
        elif content_type.endswith("json"):
            try:
                raw = request.body
            except RequestDataTooBig:
                return None  # too large to scan: the view refuses it (a webhook says 413)
            if b"\\u0000" not in raw:
                return None
            try:
                body = json.loads(raw)
            except ValueError:
                return None  # not JSON: the view says so
            if any(NUL in text for text in _strings(body)):
                return "the JSON body"
    return None


def bad_request_page(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith(("/api/", "/hooks/")):  # JSON clients, JSON answers
        from pipetower.api.errors import error_response

        return error_response(400, "bad_request", message)
    return render(
        request,
        "core/error.html",
        {"code": 400, "title": "That request cannot be read", "message": message},
        status=400,
    )


class NulRefusalMiddleware:
    """Refuses NUL characters before any view runs; turns a `BadQuery` a page
    raises into a 400 page that says what is wrong."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = nul_found(request)
        if where is not None:
            return bad_request_page(
                request, f"Text may not contain NUL characters (\\x00), and {where} has one."
            )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BadQuery):
            return bad_request_page(request, exception.message)
        return None

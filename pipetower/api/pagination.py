"""Page-number pagination for every API list.

`?page=2&page_size=20` answers
`{"items": [...], "count": N, "page": 2, "page_size": 20, "next": url|null, "previous": url|null}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Schema

MAX_PAGE_SIZE = 100


class PageParams(Schema):
    page: int = Field(1, ge=1, description="Page number, from 1.")
    page_size: int | None = Field(
        None,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Items per page, 1 to {MAX_PAGE_SIZE}. Defaults to the server's page size.",
    )


class Page[T](Schema):
    items: list[T]
    count: int
    page: int
    page_size: int
    next: str | None
    previous: str | None


def _page_url(request: HttpRequest, page: int, page_size: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    query["page_size"] = str(page_size)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def paginate(
    request: HttpRequest,
    items: QuerySet[Any] | Sequence[Any],
    params: PageParams,
    *,
    transform: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """One page of `items` in the API's list shape. A page past the end is a 404."""
    page_size = params.page_size or min(int(settings.API_PAGE_SIZE), MAX_PAGE_SIZE)
    count = items.count() if isinstance(items, QuerySet) else len(items)
    pages = max(1, math.ceil(count / page_size))
    if params.page > pages:
        raise Http404(
            f"Page {params.page} is past the end: there "
            + ("is 1 page." if pages == 1 else f"are {pages} pages.")
        )
    start = (params.page - 1) * page_size
    rows = list(items[start : start + page_size])
    if transform is not None:
        rows = [transform(row) for row in rows]
    return {
        "items": rows,
        "count": count,
        "page": params.page,
        "page_size": page_size,
        "next": _page_url(request, params.page + 1, page_size) if params.page < pages else None,
        "previous": _page_url(request, params.page - 1, page_size) if params.page > 1 else None,
    }

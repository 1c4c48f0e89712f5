"""Every page route and API operation, read from the URL configuration and the schema."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from pipetower.api.api import api

_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def page_routes() -> dict[str, str]:
    """URL name -> route with `<param>` placeholders, for every non-API, non-admin page."""
    found: dict[str, str] = {}

    def walk(resolver: URLResolver, prefix: str, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                ns = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
                walk(pattern, prefix + str(pattern.pattern), ns)
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if route.startswith(("api/", "admin/")):
                    continue
                name = namespace + (pattern.name or f"<unnamed {route}>")
                found.setdefault(name, route)

    walk(get_resolver(), "", "")
    return found


def api_operations() -> dict[str, dict[str, Any]]:
    """ "METHOD /path" -> OpenAPI operation, for every operation in the schema."""
    schema = api.get_openapi_schema()
    found: dict[str, dict[str, Any]] = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            found[f"{method.upper()} {path}"] = operation
    return found


def route_params(route: str) -> list[str]:
    return _PARAM.findall(route)


def fill(route: str, values: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    filled = _PARAM.sub(one, route)
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), filled)

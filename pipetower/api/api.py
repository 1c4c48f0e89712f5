"""Pipetower's REST API, mounted at /api/v1/.

Schema: /api/v1/schema/ (OpenAPI 3). Docs: /api/v1/docs (the Swagger UI bundled
with django-ninja, served from our own static files, no CDN).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from pipetower.api.auth import CallerRateThrottle, SessionAuth, TokenAuth
from pipetower.api.endpoints import me, teams, tokens
from pipetower.api.errors import error_response, install_exception_handlers

DESCRIPTION = """\
Authenticate with a personal API token: `Authorization: Bearer ptk_...`
(create one under API tokens). A read token may only make GET requests.
Signed-in browsers may also call the API with their session and CSRF token.

Lists take `?page=` and `?page_size=` (at most 100). Errors answer
`{"error": {"code": ..., "message": ..., "details": [...]}}`.
"""


def _json_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Ninja answers an unsupported method with a plain-text 405; give it the error shape."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = ", ".join(sorted(response["Allow"].split(", ")))
            response = error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not supported here. Allowed: {allowed}.",
            )
            response["Allow"] = allowed
        return response

    return wrapper


@csrf_exempt
def _unknown_endpoint(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return error_response(
        404, "not_found", "There is no API endpoint here. See /api/v1/docs for the list."
    )


def _refs(node: Any) -> set[str]:
    """The component names a part of the schema refers to."""
    if isinstance(node, dict):
        found = (
            {str(node["$ref"]).rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        )
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def prune_unused_schemas(schema: dict[str, Any]) -> None:
    """Drop component schemas nothing refers to. Ninja adds the model of every
    `Query[...]` parameter group although the operation lists its fields one by one;
    a client generated from the schema would get an unused class for each."""
    components = schema.get("components", {}).get("schemas", {})
    used: set[str] = set()
    todo = _refs(schema.get("paths", {}))
    while todo:
        name = todo.pop()
        if name in used or name not in components:
            continue
        used.add(name)
        todo |= _refs(components[name]) - used
    for name in set(components) - used:
        del components[name]


class PipetowerAPI(NinjaAPI):
    """NinjaAPI whose every answer under its prefix, even for unknown URLs, is JSON."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        prune_unused_schemas(schema)
        return schema

    def _get_urls(self) -> list[URLPattern | URLResolver]:
        urls: list[URLPattern | URLResolver] = []
        for pattern in super()._get_urls():
            if isinstance(pattern, URLPattern):
                if pattern.name == "api-root":
                    pattern.callback = _unknown_endpoint
                else:
                    pattern.callback = _json_not_allowed(pattern.callback)
            urls.append(pattern)
        urls.append(re_path(r"^.*$", _unknown_endpoint, name="unknown-endpoint"))
        return urls


api = PipetowerAPI(
    title="Pipetower API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    openapi_url="/schema/",
    docs_url="/docs",
    # validatorUrl None: the docs page must not call out to a public validator.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
    auth=[TokenAuth(), SessionAuth()],
    throttle=[CallerRateThrottle()],
)
install_exception_handlers(api)

api.add_router("", me.router)
api.add_router("", teams.router)
api.add_router("", tokens.router)
api.add_router("", "pipetower.servers.api.router")
api.add_router("", "pipetower.actions.api.router")
api.add_router("", "pipetower.privacy.api.router")
api.add_router("", "pipetower.notifications.api.router")

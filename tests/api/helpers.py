"""Helpers for API tests: a small JSON client and an error-shape check."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


class Api:
    """Calls /api/v1 with a bearer token (or none) and decodes the JSON answer."""

    def __init__(self, client: Client, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def call(self, method: str, path: str, data: Any = None, **extra: Any) -> Any:
        headers = dict(extra.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        kwargs: dict[str, Any] = {"headers": headers, **extra}
        if data is not None:
            kwargs["data"] = data if isinstance(data, str | bytes) else json.dumps(data)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def get(self, path: str, **extra: Any) -> Any:
        return self.call("get", path, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.call("post", path, data, **extra)

    def patch(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.call("patch", path, data, **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        return self.call("delete", path, **extra)


def error_of(response: Any) -> dict[str, Any]:
    """The `error` object of an API answer, after checking the shape is exactly ours."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["details"], list)
    assert body["error"]["message"]
    return body["error"]

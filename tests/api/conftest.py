from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from pipetower.api.models import ApiToken
from pipetower.api.services import api_token_create
from tests.actions.conftest import make_action, tasks_queued  # noqa: F401  (fixtures)
from tests.api.helpers import Api


@pytest.fixture
def make_token() -> Callable[..., tuple[ApiToken, str]]:
    def make(user: Any, scope: str = ApiToken.Scope.WRITE, name: str = "script", **kw: Any):
        return api_token_create(user=user, name=name, scope=scope, **kw)

    return make


@pytest.fixture
def write_token(user: Any, make_token: Callable[..., tuple[ApiToken, str]]) -> str:
    return make_token(user, ApiToken.Scope.WRITE)[1]


@pytest.fixture
def read_token(user: Any, make_token: Callable[..., tuple[ApiToken, str]]) -> str:
    return make_token(user, ApiToken.Scope.READ, name="reader")[1]


@pytest.fixture
def api(client: Client, team: Any, write_token: str) -> Api:
    """The `user` fixture (owner of `team`) calling with a read-write token."""
    return Api(client, write_token)


@pytest.fixture
def anon_api(client: Client, db: None) -> Api:
    return Api(client)

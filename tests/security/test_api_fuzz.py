"""Schemathesis over the whole OpenAPI schema, as a member of a seeded team.

Every operation is called with generated data (valid and invalid) through the
real Django WSGI application and the test database. The checks: no server
error (5xx), and every status code the API answers is declared in the schema,
with a body that matches the declared shape.

Path parameters are pinned to team A's real slug and object ids (and, now and
then, to unknown ones), so the generated requests reach the endpoints' code
instead of stopping at "no such team". `make test` runs a few examples per
operation; `make fuzz` sets PIPETOWER_FUZZ_EXAMPLES for a long run.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from pipetower.api.api import api
from tests.security.seed import Seed, seed

EXAMPLES = int(os.environ.get("PIPETOWER_FUZZ_EXAMPLES", "4"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _pin_path_parameters(raw: dict[str, Any], seed_: Seed) -> dict[str, Any]:
    values = seed_.url_values
    raw = copy.deepcopy(raw)
    for item in raw["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if parameter["in"] != "path" or name not in values:
                    continue
                kind = parameter["schema"].get("type", "string")
                unknown: Any = "no-such-team" if kind == "string" else 999999
                parameter["schema"] = {"type": kind, "enum": [values[name], unknown]}
    return raw


@pytest.fixture
def fuzz_seed(db: None) -> Iterator[Seed]:
    # The WSGI handler closes the database connection when a request starts and finishes,
    # which would close the test's transaction; Django's test client
    # disconnects the same receiver for the same reason.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield seed()
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


def test_api_fuzz(fuzz_seed: Seed) -> None:
    # The schema as /api/v1/schema/ serves it (fetched without the test client,
    # which would reconnect the receiver the fixture disconnected).
    raw = json.loads(json.dumps(api.get_openapi_schema(), default=str))
    loaded = schemathesis.openapi.from_dict(_pin_path_parameters(raw, fuzz_seed))
    loaded.app = get_wsgi_application()
    headers = {"Authorization": f"Bearer {fuzz_seed.tokens['owner']}"}
    failures: list[str] = []
    cases = 0

    for result in loaded.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=EXAMPLES <= 10,
            database=None,
        )
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            cache.clear()  # a fresh rate-limit budget per case; 429 is tested elsewhere
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # one operation's failure must not hide the others'
            failures.append(f"{operation.label}: {exc}")
    print(f"schemathesis: {cases} cases over {len(raw['paths'])} paths")
    assert cases > 0
    assert not failures, "\n\n".join(failures)


def test_api_fuzz_stateful(fuzz_seed: Seed) -> None:
    """Sequences of calls along the links Schemathesis infers between operations
    (an id one operation returns, fed to the next)."""
    raw = json.loads(json.dumps(api.get_openapi_schema(), default=str))
    loaded = schemathesis.openapi.from_dict(_pin_path_parameters(raw, fuzz_seed))
    loaded.app = get_wsgi_application()
    headers = {"Authorization": f"Bearer {fuzz_seed.tokens['owner']}"}
    calls: list[str] = []

    class Machine(loaded.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            cache.clear()
            calls.append(f"{case.method} {case.path}")
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=settings(
            max_examples=max(2, EXAMPLES // 2),
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=EXAMPLES <= 10,
            database=None,
        )
    )
    print(f"schemathesis stateful: {len(calls)} calls, {len(set(calls))} operations")
    assert len(set(calls)) > 1

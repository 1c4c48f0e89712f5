"""Every API operation, present and future, is named, declares what it can answer,
types what it returns and is documented.

The checks read the live OpenAPI document, so an endpoint added later by any app
is checked the same way without touching this file. A client generated from the
schema (tests/api/test_generated_client.py) relies on all of this: an undeclared
status makes its `sync()` return None instead of the error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ninja.responses import NinjaJSONEncoder

from pipetower.api.api import api as pipetower_api

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
OPERATION_ID = re.compile(r"^[a-z]+(_[a-z]+)*$")
OPERATION_ID_MAX = 32
WRITE_METHODS = {"post", "put", "patch", "delete"}
PREFIX = "/api/v1"


def _schema() -> dict[str, Any]:
    """The document as /api/v1/schema/ serves it (JSON: status keys are strings)."""
    return json.loads(json.dumps(pipetower_api.get_openapi_schema(), cls=NinjaJSONEncoder))


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = _schema()
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


OPERATIONS = _operations()
IDS = [f"{method.upper()} {path.removeprefix(PREFIX)}" for method, path, _ in OPERATIONS]


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


def _has_query(operation: dict[str, Any]) -> bool:
    return any(p.get("in") == "query" for p in operation.get("parameters", []))


def _success(operation: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [
        (int(status), answer)
        for status, answer in operation["responses"].items()
        if 200 <= int(status) < 300
    ]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(_ref_name(value))
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _reachable(schema: dict[str, Any], names: set[str]) -> set[str]:
    components = schema["components"]["schemas"]
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(components[name]) - seen)
    return seen


def _untyped(node: Any, where: str) -> list[str]:
    """Places in a schema that say nothing about their shape (`Any`, a bare object)."""
    problems: list[str] = []
    if isinstance(node, dict):
        if not set(node) - {"title", "description", "default", "examples"}:
            return [where]  # no type at all: Any
        if node.get("type") == "object" and "properties" not in node:
            extra = node.get("additionalProperties", True)
            if extra is True or extra == {}:
                problems.append(where)
        for key, value in node.items():
            if key in {"properties", "$defs"} and isinstance(value, dict):
                for name, sub in value.items():
                    problems += _untyped(sub, f"{where}.{name}")
            elif key in {"items", "additionalProperties"} and isinstance(value, dict):
                problems += _untyped(value, f"{where}[{key}]")
            elif key in {"anyOf", "oneOf", "allOf"}:
                for index, sub in enumerate(value):
                    problems += _untyped(sub, f"{where}<{index}>")
    return problems


# --- names -------------------------------------------------------------------


def _id_problem(operation_id: str) -> str | None:
    if not OPERATION_ID.match(operation_id):
        return f"{operation_id!r} is not snake_case"
    if len(operation_id) > OPERATION_ID_MAX:
        return f"{operation_id} is longer than {OPERATION_ID_MAX} characters"
    if operation_id.startswith(("pipetower_", "api_")):
        return f"{operation_id} is a module path: give it an operation_id= like runs_start"
    return None


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_has_a_short_snake_case_id(method, path, operation):
    assert _id_problem(operation.get("operationId", "")) is None


def test_operation_ids_are_unique():
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]

    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_the_id_check_refuses_a_generated_name():
    assert _id_problem("pipetower_actions_api_run_start")
    assert _id_problem("runStart")
    assert _id_problem("runs_start") is None


# --- statuses ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_declares_the_statuses_it_can_answer(method, path, operation):
    statuses = _statuses(operation)
    # Every request: a NUL character (400), no or a bad token (401), the rate limit (429).
    needed = {400, 401, 429}
    if method in WRITE_METHODS:
        needed.add(403)  # a read-scope token, or a role too low
    if "{" in path:
        needed.add(404)  # someone else's team or object, or none
    if "requestBody" in operation or _has_query(operation):
        needed.add(422)  # a field of the wrong type or out of range
    success = _success(operation)
    answered = {_ref_name(ref) for _, answer in success for ref in _refs(answer)}
    if any(name.startswith("Page_") for name in answered):
        needed |= {404, 422}  # a page past the end; a page size out of range

    assert needed <= statuses, f"{method.upper()} {path} lacks {sorted(needed - statuses)}"
    assert len(success) == 1, f"{method.upper()} {path}: one success status"
    for status in statuses - {200, 201, 202, 204}:
        content = operation["responses"][str(status)]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, (path, status)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_answer_has_a_typed_schema(method, path, operation):
    ((status, answer),) = _success(operation)
    if status == 204:
        assert "content" not in answer or not answer["content"]
        return
    if "application/json" not in answer["content"]:  # a file: named as such
        ((media, content),) = answer["content"].items()
        assert content["schema"] == {"type": "string", "format": "binary"}, (path, media)
        return
    schema = answer["content"]["application/json"]["schema"]

    assert "$ref" in schema, f"{method.upper()} {path}: answer a named schema"


def test_no_answer_contains_an_untyped_value():
    schema = _schema()
    answered = set()
    for _, _, operation in OPERATIONS:
        for _, answer in _success(operation):
            answered |= _refs(answer.get("content", {}))
    components = schema["components"]["schemas"]
    problems = [
        problem
        for name in sorted(_reachable(schema, answered))
        for problem in _untyped(components[name], name)
    ]

    assert problems == []


def test_the_untyped_check_finds_a_planted_any():
    planted = {"type": "object", "properties": {"params": {"type": "object"}, "x": {}}}

    assert _untyped(planted, "Planted") == ["Planted.params", "Planted.x"]


def test_every_status_field_is_an_enumeration():
    schema = _schema()
    components = schema["components"]["schemas"]
    loose = []
    for name, component in components.items():
        for field, spec in component.get("properties", {}).items():
            if field == "status" or field.endswith("_status") or field == "trigger":
                options = spec.get("anyOf", [spec])
                if not all("enum" in o or "$ref" in o or o.get("type") == "null" for o in options):
                    loose.append(f"{name}.{field}")

    assert loose == []


def test_the_schema_holds_no_unused_models():
    schema = _schema()
    used = _reachable(schema, _refs(schema["paths"]))

    assert set(schema["components"]["schemas"]) - used == set()


# --- docs --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_has_a_row_in_the_api_docs(method, path, operation):
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("|")]
    wanted = f"`{method.upper()} {path.removeprefix(PREFIX)}`"
    matching = [row for row in rows if wanted in row]

    assert matching, f"docs/api.md has no row for {wanted}"
    assert any(f"`{operation['operationId']}`" in row for row in matching), (
        f"docs/api.md: the row for {wanted} names its operation id `{operation['operationId']}`"
    )

"""Typed action parameters: their definitions, and the values a run is started with.

A definition is a dict kept in `Action.parameters`:
``{"name", "label", "kind", "required", "default", "choices", "help"}``.
A value reaches the script only as the environment variable
``PT_PARAM_<NAME>`` (see `engine.remote_program`), never inside the script text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pipetower.actions.models import ParamKind
from pipetower.core.errors import ServiceError

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
MAX_VALUE_CHARS = 64 * 1024
MAX_PARAMETERS = 50
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def env_name(name: str) -> str:
    return f"PT_PARAM_{name.upper()}"


def _text(value: Any, *, label: str) -> str:
    text = str(value)
    if "\x00" in text:
        raise ServiceError(f"{label} must not contain a NUL character.", field=label)
    if len(text) > MAX_VALUE_CHARS:
        raise ServiceError(
            f"{label} is too long ({len(text):,} characters; at most {MAX_VALUE_CHARS:,}).",
            field=label,
        )
    return text


def coerce(spec: Mapping[str, Any], value: Any) -> Any:
    """`value` as the parameter's type, or a ServiceError that says what is wrong."""
    name = spec["name"]
    kind = spec["kind"]
    if kind == ParamKind.INTEGER:
        if isinstance(value, bool):
            raise ServiceError(f"Parameter {name} must be a whole number, not {value}.", field=name)
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not re.fullmatch(r"[-+]?\d{1,18}", text):
            raise ServiceError(
                f"Parameter {name} must be a whole number, not {text[:40]!r}.", field=name
            )
        return int(text)
    if kind == ParamKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ServiceError(
            f"Parameter {name} must be true or false, not {str(value)[:40]!r}.", field=name
        )
    if kind == ParamKind.CHOICE:
        text = str(value)
        if text not in spec.get("choices", []):
            raise ServiceError(
                f"Parameter {name} must be one of: {', '.join(spec.get('choices', []))}; "
                f"{text[:40]!r} is not.",
                field=name,
            )
        return text
    return _text(value, label=name)


def definitions_clean(
    raw: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Checked parameter definitions, and the secret defaults kept apart for encryption."""
    specs: list[dict[str, Any]] = []
    secrets: dict[str, str] = {}
    seen: set[str] = set()
    for item in raw:
        name = str(item.get("name", "")).strip()
        if not NAME_RE.match(name):
            raise ServiceError(
                f"Parameter name {name[:40]!r} is not allowed: use letters, digits and _, "
                "starting with a letter (at most 40).",
                field="parameters",
            )
        if name.upper() in seen:
            raise ServiceError(f"Two parameters are named {name}.", field="parameters")
        seen.add(name.upper())
        kind = str(item.get("kind") or ParamKind.STRING)
        if kind not in ParamKind.values:
            raise ServiceError(
                f"Parameter {name} has an unknown type {kind!r}; use one of "
                + ", ".join(ParamKind.values)
                + ".",
                field="parameters",
            )
        choices = [str(c).strip() for c in item.get("choices") or [] if str(c).strip()]
        if kind == ParamKind.CHOICE:
            if not choices:
                raise ServiceError(
                    f"Choice parameter {name} needs at least one choice.", field="parameters"
                )
            if len(set(choices)) != len(choices):
                raise ServiceError(f"Parameter {name} lists a choice twice.", field="parameters")
        spec: dict[str, Any] = {
            "name": name,
            "label": str(item.get("label") or "").strip()[:100] or name,
            "kind": kind,
            "required": bool(item.get("required", False)),
            "choices": choices if kind == ParamKind.CHOICE else [],
            "help": str(item.get("help") or "").strip()[:300],
            "default": None,
        }
        default = item.get("default")
        if default is not None and default != "":
            try:
                value = coerce(spec, default)
            except ServiceError as exc:
                raise ServiceError(
                    f"Default of parameter {name}: {exc.message}", field="parameters"
                ) from None
            if kind == ParamKind.SECRET:
                secrets[name] = value
            else:
                spec["default"] = value
        specs.append(spec)
    if len(specs) > MAX_PARAMETERS:
        raise ServiceError(
            f"An action takes at most {MAX_PARAMETERS} parameters.", field="parameters"
        )
    return specs, secrets


def values_resolve(
    specs: list[dict[str, Any]],
    secret_defaults: Mapping[str, str],
    given: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values for a run: (plain values, secret values). Unknown names are refused."""
    known = {spec["name"] for spec in specs}
    unknown = [name for name in given if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no parameters"
        raise ServiceError(
            f"Unknown parameter {unknown[0]}. This action takes: {takes}.", field=unknown[0]
        )
    plain: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for spec in specs:
        name = spec["name"]
        value = given.get(name)
        is_secret = spec["kind"] == ParamKind.SECRET
        if value is None or (value == "" and spec["kind"] != ParamKind.STRING):
            value = secret_defaults.get(name) if is_secret else spec.get("default")
        if value is None or value == "":
            if spec.get("required"):
                raise ServiceError(f"Parameter {name} is required.", field=name)
            value = ""
        else:
            value = coerce(spec, value)
        if is_secret:
            secrets[name] = str(value)
        else:
            plain[name] = value
    return plain, secrets


def env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)

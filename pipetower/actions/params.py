"""Typed action parameters: their definitions, and the values a run is started with.

A definition is a dict kept in `Action.parameters`:
``{"name", "label", "kind", "required", "default", "choices", "help", "min", "max"}``
(``min``/``max``: optional bounds of an integer parameter).
A value reaches the script only as the environment variable
``PT_PARAM_<NAME>`` (see `engine.remote_program`), never inside the script text.

The values of a run are exactly the ones asked for (`values_resolve`): a
default is used only for the parameters whose default the caller asked for by
name; a form shows defaults by pre-filling its fields, and what it sends is
what runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pipetower.actions.models import ParamKind
from pipetower.core.errors import ServiceError

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
MAX_VALUE_CHARS = 64 * 1024
MAX_PARAMETERS = 50
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
# Integer values are 64-bit: a bound-less integer parameter still has these.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
INTEGER_RE = re.compile(r"[-+]?\d+")


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


def bounds_text(spec: Mapping[str, Any]) -> str:
    """How the bounds of an integer parameter read in a message ("between 1 and 10")."""
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return f"between {INT_MIN} and {INT_MAX}"


def _integer(spec: Mapping[str, Any], value: Any) -> int:
    name = spec["name"]
    if isinstance(value, bool):
        raise ServiceError(f"Parameter {name} must be a whole number, not {value}.", field=name)
    if isinstance(value, int):
        number = value
        shown = str(value)
    else:
        text = str(value).strip()
        if not INTEGER_RE.fullmatch(text):
            raise ServiceError(
                f"Parameter {name} must be a whole number, not {text[:40]!r}.", field=name
            )
        shown = text if len(text) <= 40 else text[:40] + "…"
        # Longer than any 64-bit number: out of range without converting it.
        number = (
            int(text)
            if len(text.lstrip("+-")) <= 25
            else (INT_MAX + 1) * (-1 if text.startswith("-") else 1)
        )
    low, high = spec.get("min"), spec.get("max")
    low_eff = INT_MIN if low is None else low
    high_eff = INT_MAX if high is None else high
    if low_eff <= number <= high_eff:
        return number
    declared_side = low if number < low_eff else high
    rule = bounds_text(spec) if declared_side is not None else f"between {low_eff} and {high_eff}"
    raise ServiceError(f"Parameter {name} must be {rule}; {shown} is not.", field=name)


def coerce(spec: Mapping[str, Any], value: Any) -> Any:
    """`value` as the parameter's type, or a ServiceError that says what is wrong."""
    name = spec["name"]
    kind = spec["kind"]
    if kind == ParamKind.INTEGER:
        return _integer(spec, value)
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


def _bound(raw: Any, *, name: str, which: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return _integer({"name": name}, raw)
    except ServiceError:
        raise ServiceError(
            f"The {which} of parameter {name} must be a whole number between "
            f"{INT_MIN} and {INT_MAX}, not {str(raw)[:40]!r}.",
            field="parameters",
        ) from None


def _bounds_clean(item: Mapping[str, Any], *, name: str, kind: str) -> dict[str, int | None]:
    """The optional min/max of an integer parameter; other types take none."""
    low = _bound(item.get("min"), name=name, which="minimum")
    high = _bound(item.get("max"), name=name, which="maximum")
    if kind != ParamKind.INTEGER:
        if low is not None or high is not None:
            raise ServiceError(
                f"Parameter {name} is not an integer, so it cannot have a minimum or maximum.",
                field="parameters",
            )
        return {}
    if low is not None and high is not None and low > high:
        raise ServiceError(
            f"The minimum of parameter {name} ({low}) is above its maximum ({high}).",
            field="parameters",
        )
    return {"min": low, "max": high}


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
            **_bounds_clean(item, name=name, kind=kind),
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
    *,
    use_defaults: Collection[str] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values for a run, exactly as asked: (plain values, secret values).

    - A parameter in `given` takes that value; an empty value stays empty (and
      is refused for a required parameter). The default never replaces it.
    - A parameter not in `given` takes its default only if it is named in
      `use_defaults` (the caller asked for the action's default).
    - A parameter neither given nor asked to default is refused when it is
      required or has a default (the caller may not know what would run);
      otherwise it is empty.

    Every problem is collected; the ServiceError names the first parameter and
    its message lists them all (`problems` keeps them one by one for forms).
    """
    known = {spec["name"] for spec in specs}
    unknown = [name for name in given if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no parameters"
        raise ServiceError(
            f"Unknown parameter {unknown[0]}. This action takes: {takes}.", field=unknown[0]
        )
    plain: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    problems: list[ServiceError] = []
    for spec in specs:
        name = spec["name"]
        is_secret = spec["kind"] == ParamKind.SECRET
        default = secret_defaults.get(name) if is_secret else spec.get("default")
        has_default = default is not None and default != ""
        try:
            if name in given:
                value = given[name]
            elif name in use_defaults:
                value = default
            elif has_default:
                shown = (
                    "a default is stored" if is_secret else f"the default is {env_value(default)!r}"
                )
                raise ServiceError(
                    f"Parameter {name} was not given. Pipetower does not fill in defaults on "
                    f"its own: give a value ({shown}), or ask for the action's defaults.",
                    field=name,
                    code="parameter_not_given",
                )
            else:
                value = None
            if value is None or value == "":
                if spec.get("required"):
                    raise ServiceError(f"Parameter {name} is required.", field=name)
                value = ""
            else:
                value = coerce(spec, value)
        except ServiceError as exc:
            problems.append(exc)
            continue
        if is_secret:
            secrets[name] = str(value)
        else:
            plain[name] = value
    if problems:
        raise InvalidValues(problems)
    return plain, secrets


class InvalidValues(ServiceError):
    """One or more parameter values refused; `problems` has one error per parameter."""

    def __init__(self, problems: list[ServiceError]) -> None:
        first = problems[0]
        super().__init__(" ".join(p.message for p in problems), code=first.code, field=first.field)
        self.problems = problems


def env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)

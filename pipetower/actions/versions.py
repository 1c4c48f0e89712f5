"""Reads of an action's history: its versions, and what differs between two of them.

Versions are written by the action services (`services.action_create`,
`action_update`, `action_version_restore`), never here. Secret parameter defaults
are compared, so a change to one is named, but their values never leave this
module.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from pipetower.actions.models import Action, ActionVersion, ParamKind

# A diff of two scripts longer than this many lines shows this many, then says so.
DIFF_MAX_LINES = 5000


def versions_for_action(*, action: Action) -> QuerySet[ActionVersion]:
    """The action's versions, newest first, without their scripts and secrets."""
    return (
        ActionVersion.objects.filter(action=action)
        .select_related("created_by")
        .defer("script", "parameters", "secret_defaults")
        .order_by("-number")
    )


def action_version_get(*, action: Action, number: Any) -> ActionVersion:
    """Version `number` of `action` (already fetched through the team); 404 otherwise."""
    try:
        wanted = int(number)
    except (TypeError, ValueError):
        raise Http404("No such version.") from None
    version = (
        ActionVersion.objects.select_related("created_by", "team")
        .filter(action=action, number=wanted)
        .first()
    )
    if version is None:
        raise Http404(f"This action has no version {wanted}.")
    version.action = action
    return version


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "file", "hunk", "add", "del" or "same"
    text: str


@dataclass
class VersionDiff:
    """What changed from `old` to `new` (`old` None: `new` is the first version)."""

    old: ActionVersion | None
    new: ActionVersion
    script: list[DiffLine] = field(default_factory=list)
    script_cut: bool = False
    parameters: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.script or self.parameters or self.settings)


def script_diff(old: str, new: str, *, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff of two scripts, line by line, each line kept as text."""
    lines: list[DiffLine] = []
    for text in difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm=""
    ):
        if text.startswith(("---", "+++")) and len(lines) < 2:
            kind = "file"
        elif text.startswith("@@"):
            kind = "hunk"
        elif text.startswith("+"):
            kind = "add"
        elif text.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append(DiffLine(kind, text))
    return lines


def _specs(parameters: Any) -> dict[str, dict[str, Any]]:
    """Parameter definitions by name, whatever shape the stored list has."""
    specs: dict[str, dict[str, Any]] = {}
    for item in parameters if isinstance(parameters, list) else []:
        if isinstance(item, dict):
            specs.setdefault(str(item.get("name", "")), item)
    return specs


def _kind_label(kind: Any) -> str:
    try:
        return str(ParamKind(kind).label)
    except ValueError:
        return str(kind)


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return f"“{value}”"


def parameter_changes(old: ActionVersion | None, new: ActionVersion) -> list[str]:
    """Each change to the parameters, in words; secret defaults named, never shown."""
    before = _specs(old.parameters) if old else {}
    after = _specs(new.parameters)
    old_secrets = old.secret_default_values() if old else {}
    new_secrets = new.secret_default_values()
    changes: list[str] = []
    for name in before:
        if name not in after:
            changes.append(f"Removed parameter {name}.")
    for name, spec in after.items():
        if name not in before:
            changes.append(f"Added parameter {name} ({_kind_label(spec.get('kind'))}).")
            continue
        was = before[name]
        for key, words in (
            ("label", "label"),
            ("kind", "type"),
            ("required", "required"),
            ("default", "default"),
            ("choices", "choices"),
            ("min", "smallest value"),
            ("max", "largest value"),
            ("help", "help text"),
        ):
            a, b = was.get(key), spec.get(key)
            if a == b or (not a and not b and a is not False and b is not False):
                continue
            if key == "kind":
                a, b = _kind_label(a), _kind_label(b)
            if key == "default" and ParamKind.SECRET in (was.get("kind"), spec.get("kind")):
                changes.append(f"{name}: default changed (not shown: secret).")
                continue
            changes.append(f"{name}: {words} {_shown(a)} → {_shown(b)}.")
    for name in sorted(set(old_secrets) | set(new_secrets)):
        if name not in after:
            continue
        if name not in old_secrets:
            changes.append(f"{name}: a secret default was set (not shown).")
        elif name not in new_secrets:
            changes.append(f"{name}: the secret default was removed.")
        elif old_secrets[name] != new_secrets[name]:
            changes.append(f"{name}: the secret default changed (not shown).")
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    if kept_before != kept_after:
        changes.append("The parameters are in a new order.")
    return changes


def _run_as(value: str) -> str:
    return value or "the login user"


def settings_changes(old: ActionVersion | None, new: ActionVersion) -> list[str]:
    if old is None:
        return []
    changes = []
    if old.run_as != new.run_as:
        changes.append(f"Run as: {_run_as(old.run_as)} → {_run_as(new.run_as)}.")
    if old.timeout_seconds != new.timeout_seconds:
        changes.append(f"Timeout per server: {old.timeout_seconds} s → {new.timeout_seconds} s.")
    if old.concurrency != new.concurrency:
        changes.append(f"Servers at once: {old.concurrency} → {new.concurrency}.")
    if old.failure_limit != new.failure_limit:
        changes.append(
            f"Stop after failures: {old.failure_limit or 'never'} → {new.failure_limit or 'never'}."
        )
    return changes


def version_diff(*, old: ActionVersion | None, new: ActionVersion) -> VersionDiff:
    """What differs from `old` to `new`: the script as a unified diff, the parameters
    and the settings as sentences."""
    diff = VersionDiff(old=old, new=new)
    if old is not None:
        lines = script_diff(
            old.script,
            new.script,
            old_label=f"version {old.number}",
            new_label=f"version {new.number}",
        )
        diff.script_cut = len(lines) > DIFF_MAX_LINES
        diff.script = lines[:DIFF_MAX_LINES]
        diff.settings = settings_changes(old, new)
        diff.parameters = parameter_changes(old, new)
    return diff

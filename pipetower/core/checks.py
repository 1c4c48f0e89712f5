"""System checks: refuse to start on a configuration that would lose data."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.db import DatabaseError


@register("pipetower")
def master_keys_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from pipetower.core import crypto

    try:
        problems = crypto.master_keys_verify()
    except DatabaseError:
        return []  # not migrated yet: nothing encrypted to protect
    return [Error(p, id="pipetower.E001") for p in problems]

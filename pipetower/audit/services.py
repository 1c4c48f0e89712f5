from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from pipetower.audit.models import AuditEvent
from pipetower.core.http import client_ip


def audit_record(
    *,
    actor: Any,
    verb: str,
    team: Any = None,
    target: models.Model | None = None,
    request: HttpRequest | None = None,
    ip: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the service that makes the change."""
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        team=team,
        actor=actor_obj,
        actor_label=(actor_obj.email if actor_obj else "system")[:254],
        verb=verb,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:254] if target is not None else "",
        ip=ip or client_ip(request),
        data=data or {},
    )

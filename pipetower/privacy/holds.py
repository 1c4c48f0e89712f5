"""Legal holds: records kept despite a deletion, for a stated reason, until lifted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pipetower.accounts.models import User
from pipetower.audit.services import audit_record
from pipetower.core.errors import ServiceError
from pipetower.privacy.models import LegalHold


def held_models(*, user: User, now: datetime | None = None) -> dict[str, str]:
    """Model labels kept for `user` by active holds, with the reason."""
    now = now or timezone.now()
    held: dict[str, str] = {}
    active = LegalHold.objects.filter(user=user, lifted_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    for hold in active:
        for label in hold.scope:
            held.setdefault(str(label), hold.reason)
    return held


def legal_hold_place(
    *,
    user: User,
    reason: str,
    scope: Iterable[str],
    expires_at: datetime | None = None,
    actor: User | None = None,
) -> LegalHold:
    reason = reason.strip()
    if not reason:
        raise ServiceError("A legal hold needs a reason.", field="reason")
    scope = sorted(set(scope))
    if not scope:
        raise ServiceError("Name the records the hold keeps.", field="scope")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            user=user, reason=reason, scope=scope, expires_at=expires_at, created_by=actor
        )
        audit_record(actor=actor, verb="privacy.legal_hold_placed", target=hold)
    return hold


def legal_hold_lift(*, hold: LegalHold, actor: User | None = None) -> LegalHold:
    """Lift a hold; when the person's account was deleted, what it kept is purged now."""
    from pipetower.privacy.deletion import account_erase

    with transaction.atomic():
        hold.lifted_at = timezone.now()
        hold.save(update_fields=["lifted_at"])
        audit_record(actor=actor, verb="privacy.legal_hold_lifted", target=hold)
        user = User.objects.filter(pk=hold.user_id).first() if hold.user_id else None
        # An account erased under a hold stays only locked and emptied (deletion.py).
        if user is not None and not user.is_active and not user.has_usable_password():
            account_erase(user=user)
    return hold

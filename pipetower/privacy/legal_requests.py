"""The register of government and legal requests for data.

Staff record each request in the back office (`privacy/admin.py`), which calls
`legal_request_record` and `legal_request_update`: both check the staff
member and the fields (`legal_request_fields_check`, which the back-office
form also uses to show its errors), write and audit in one transaction.
The public transparency page shows only `legal_requests_yearly`: per year,
how many were received, how many led to disclosure and in how many the
customer was told. The rows themselves are never published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import ExtractYear
from django.http import HttpRequest
from django.utils import timezone

from pipetower.audit.services import audit_record
from pipetower.core.errors import Gone, NotAllowed, ServiceError
from pipetower.privacy.models import LegalRequest

if TYPE_CHECKING:
    from pipetower.accounts.models import User

EARLIEST_YEAR = 2000
FIELDS = ("authority", "received_on", "scope", "disclosed", "reason", "customer_notified")


def staff_refusal(*, actor: Any) -> str | None:
    if not getattr(actor, "is_authenticated", False) or not actor.is_staff:
        return "Only Pipetower staff record government and legal requests."
    return None


@dataclass(frozen=True)
class LegalRequestFields:
    authority: str
    received_on: date
    scope: str
    disclosed: bool
    reason: str
    customer_notified: bool


def legal_request_fields_check(
    *,
    authority: str,
    received_on: date | None,
    scope: str,
    disclosed: bool | None,
    reason: str,
    customer_notified: bool | None,
    today: date | None = None,
) -> LegalRequestFields:
    """The fields as they will be stored, or the first problem with them."""
    today = today or timezone.localdate()
    authority, scope, reason = authority.strip(), scope.strip(), reason.strip()
    if not authority:
        raise ServiceError(
            "Name the authority that made the request, e.g. a court or a police force.",
            field="authority",
        )
    if len(authority) > 200:
        raise ServiceError("Keep the authority's name under 200 characters.", field="authority")
    if received_on is None:
        raise ServiceError("Give the date the request was received.", field="received_on")
    if received_on > today:
        raise ServiceError(
            "The date received cannot be in the future. Record a request once it has arrived.",
            field="received_on",
        )
    if received_on.year < EARLIEST_YEAR:
        raise ServiceError(
            f"Check the date received: it is before {EARLIEST_YEAR}.", field="received_on"
        )
    if not scope:
        raise ServiceError(
            "Describe what was asked for: which accounts or data, and for which period.",
            field="scope",
        )
    if len(scope) > 5000:
        raise ServiceError("Keep the scope under 5,000 characters.", field="scope")
    if disclosed is None:
        raise ServiceError("Say whether any data was disclosed.", field="disclosed")
    if not disclosed and not reason:
        raise ServiceError(
            "Give the reason nothing was disclosed, e.g. the request was not legally binding.",
            field="reason",
        )
    if len(reason) > 5000:
        raise ServiceError("Keep the reason under 5,000 characters.", field="reason")
    if customer_notified is None:
        raise ServiceError("Say whether the customer was told.", field="customer_notified")
    return LegalRequestFields(
        authority=authority,
        received_on=received_on,
        scope=scope,
        disclosed=disclosed,
        reason=reason,
        customer_notified=customer_notified,
    )


def legal_request_record(
    *,
    actor: User,
    authority: str,
    received_on: date | None,
    scope: str,
    disclosed: bool | None,
    reason: str,
    customer_notified: bool | None,
    request: HttpRequest | None = None,
) -> LegalRequest:
    refusal = staff_refusal(actor=actor)
    if refusal:
        raise NotAllowed(refusal)
    fields = legal_request_fields_check(
        authority=authority,
        received_on=received_on,
        scope=scope,
        disclosed=disclosed,
        reason=reason,
        customer_notified=customer_notified,
    )
    with transaction.atomic():
        row = LegalRequest.objects.create(
            recorded_by=actor,
            authority=fields.authority,
            received_on=fields.received_on,
            scope=fields.scope,
            disclosed=fields.disclosed,
            reason=fields.reason,
            customer_notified=fields.customer_notified,
        )
        # The scope and reason can name a customer: the activity log keeps only the outcome.
        audit_record(
            actor=actor,
            verb="privacy.legal_request_recorded",
            target=row,
            request=request,
            data={
                "received_on": row.received_on.isoformat(),
                "disclosed": row.disclosed,
                "customer_notified": row.customer_notified,
            },
        )
    return row


def legal_request_update(
    *,
    actor: User,
    legal_request_id: int,
    authority: str,
    received_on: date | None,
    scope: str,
    disclosed: bool | None,
    reason: str,
    customer_notified: bool | None,
    request: HttpRequest | None = None,
) -> LegalRequest:
    """Correct a record, or note what happened later (the customer told once allowed)."""
    refusal = staff_refusal(actor=actor)
    if refusal:
        raise NotAllowed(refusal)
    fields = legal_request_fields_check(
        authority=authority,
        received_on=received_on,
        scope=scope,
        disclosed=disclosed,
        reason=reason,
        customer_notified=customer_notified,
    )
    with transaction.atomic():
        row = LegalRequest.objects.select_for_update().filter(pk=legal_request_id).first()
        if row is None:
            raise Gone("This legal request is no longer recorded.")
        changed = [name for name in FIELDS if getattr(row, name) != getattr(fields, name)]
        if not changed:
            return row
        for name in changed:
            setattr(row, name, getattr(fields, name))
        row.updated_at = timezone.now()
        row.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=actor,
            verb="privacy.legal_request_changed",
            target=row,
            request=request,
            data={"fields": changed},
        )
    return row


@dataclass(frozen=True)
class YearCounts:
    year: int
    received: int
    disclosed: int
    customer_notified: int


def legal_requests_yearly() -> list[YearCounts]:
    """Per year received, newest first: how many requests, disclosures and customers told."""
    rows = (
        LegalRequest.objects.annotate(year=ExtractYear("received_on"))
        .values("year")
        .annotate(
            received=Count("id"),
            disclosed=Count("id", filter=Q(disclosed=True)),
            customer_notified=Count("id", filter=Q(customer_notified=True)),
        )
        .order_by("-year")
    )
    return [
        YearCounts(
            year=row["year"],
            received=row["received"],
            disclosed=row["disclosed"],
            customer_notified=row["customer_notified"],
        )
        for row in rows
    ]

"""Reads of the privacy center. Each one is scoped to the person asking."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from pipetower.privacy.consent import PURPOSE_EXPLANATIONS, consent_states, restriction_active
from pipetower.privacy.datamap import DATA_MAP
from pipetower.privacy.models import (
    ConsentEvent,
    DataSubjectRequest,
    ProcessingRestriction,
    Purpose,
)

if TYPE_CHECKING:
    from pipetower.accounts.models import User

LEGAL_BASIS_WORDS = {
    "contract": "Needed to provide the service you signed up for",
    "consent": "Only with your permission, which you can withdraw at any time",
    "legitimate_interest": "Our legitimate interest in keeping Pipetower secure and working",
    "legal_obligation": "Required by law",
}

# fideslang categories in plain words, most specific first.
CATEGORY_WORDS = [
    ("user.contact.email", "Email address"),
    ("user.name", "Name"),
    ("user.content.self_image", "Profile picture"),
    ("user.device.ip_address", "IP address"),
    ("user.device.browser", "Device and browser"),
    ("user.location", "Approximate location"),
    ("user.authorization.credentials", "Credentials (stored encrypted, never exported)"),
    ("user.unique_id", "Link to your account"),
    ("user.account", "Account details from a connected service"),
    ("user.content", "Content you or your team provide"),
    ("system.operations", "Technical records"),
]


def category_words(category: str) -> str:
    for prefix, words in CATEGORY_WORDS:
        if category.startswith(prefix):
            return words
    return category


@dataclass(frozen=True)
class CollectedItem:
    what: str
    purpose: str
    legal_basis: str
    retention: str


def datamap_public() -> list[tuple[str, list[CollectedItem]]]:
    """The data map as the public page shows it: grouped by title, in plain words."""
    groups: OrderedDict[str, list[CollectedItem]] = OrderedDict()
    for decl in DATA_MAP:
        if not decl.fields:
            continue
        items = groups.setdefault(decl.title, [])
        for fd in decl.fields.values():
            item = CollectedItem(
                what=category_words(fd.category),
                purpose=fd.purpose,
                legal_basis=LEGAL_BASIS_WORDS[fd.legal_basis],
                retention=fd.retention[:1].upper() + fd.retention[1:],
            )
            if item not in items:
                items.append(item)
    return list(groups.items())


@dataclass(frozen=True)
class PurposeChoice:
    purpose: str
    label: str
    explanation: str
    granted: bool


def consent_choices(*, user: User) -> list[PurposeChoice]:
    states = consent_states(user=user)
    return [
        PurposeChoice(
            purpose=p.value,
            label=p.label,
            explanation=PURPOSE_EXPLANATIONS[p],
            granted=states[p.value],
        )
        for p in Purpose
    ]


def consent_history(*, user: User) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(user=user).order_by("-id")


def restriction_current(*, user: User) -> ProcessingRestriction | None:
    return ProcessingRestriction.objects.filter(user=user, lifted_at__isnull=True).first()


def is_restricted(*, user: User) -> bool:
    return restriction_active(user=user)


def data_subject_requests_for(*, user: User) -> QuerySet[DataSubjectRequest]:
    return DataSubjectRequest.objects.filter(user=user).order_by("-created_at", "-id")

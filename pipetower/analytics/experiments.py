"""A/B experiments: a variant per visitor, kept in the `pt_ab` cookie.

A visitor is assigned only after they agreed to A/B testing cookies (and, when
signed in, while the ledger allows it); everyone else sees the control
variant and gets no cookie. The cookie holds assignments such as
`onboarding:hands_on`, no identifier.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.http import HttpRequest

from pipetower.analytics.cookies import AB_COOKIE, AB_TESTING, cookie_allowed


@dataclass(frozen=True)
class Experiment:
    name: str
    # The first variant is the control: what everyone without consent sees.
    variants: dict[str, str]

    @property
    def control(self) -> str:
        return next(iter(self.variants))


EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in [
        Experiment(
            name="onboarding",
            variants={
                "control": (
                    "Pipetower keeps your shell scripts as actions, runs them over SSH on one "
                    "server or thousands, streams the output live and keeps the history — with "
                    "2FA, pinned host keys and secrets encrypted at rest."
                ),
                "first_run": (
                    "Add a server, save a script as an action and press Run: in five minutes "
                    "you watch its output arrive live from every machine, with the history kept "
                    "and your keys encrypted at rest."
                ),
            },
        ),
    ]
}

_PAIR = re.compile(r"^([a-z0-9_]{1,32}):([a-z0-9_]{1,32})$")


def parse_assignments(value: str | None) -> dict[str, str]:
    """Known experiments and variants from the cookie; anything else is ignored."""
    assignments: dict[str, str] = {}
    for part in (value or "").split("|"):
        match = _PAIR.match(part)
        if match is None:
            continue
        name, variant = match[1], match[2]
        if name in EXPERIMENTS and variant in EXPERIMENTS[name].variants:
            assignments[name] = variant
    return assignments


def encode_assignments(assignments: dict[str, str]) -> str:
    return "|".join(f"{name}:{variant}" for name, variant in sorted(assignments.items()))


def assignments_for(request: HttpRequest) -> dict[str, str] | None:
    """This visitor's assignment for every experiment, or None without consent.

    Missing assignments are drawn at random once per request; the middleware
    stores them in the cookie on the way out.
    """
    if not cookie_allowed(request, AB_TESTING):
        return None
    assignments = getattr(request, "_pt_ab", None)
    if assignments is None:
        assignments = parse_assignments(request.COOKIES.get(AB_COOKIE))
        for name, experiment in EXPERIMENTS.items():
            if name not in assignments:
                assignments[name] = secrets.choice(list(experiment.variants))
        request._pt_ab = assignments  # type: ignore[attr-defined]
    return assignments


def variant_for(request: HttpRequest | None, name: str) -> str:
    """The variant this visitor sees: their assignment, or the control."""
    experiment = EXPERIMENTS.get(name)
    if experiment is None:
        raise KeyError(f"Unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    if request is None:
        return experiment.control
    assignments = assignments_for(request)
    if assignments is None:
        return experiment.control
    return assignments[name]

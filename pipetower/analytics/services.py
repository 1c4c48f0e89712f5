"""Writes: saving cookie choices, counting page views and experiment exposures."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from pipetower.analytics.cookies import (
    AB_COOKIE,
    AB_TESTING,
    ANALYTICS,
    CONSENT_COOKIE,
    CONSENT_MAX_AGE,
    CookieChoices,
    forget_allowed,
)
from pipetower.analytics.models import ExperimentExposure, PageView
from pipetower.analytics.scripts import script_cookie_delete, withdrawn_scripts
from pipetower.privacy.consent import WORDING_VERSIONS, consent_set
from pipetower.privacy.models import Channel


def cookie_choices_save(
    *, request: HttpRequest, response: HttpResponse, analytics: bool, ab_testing: bool
) -> CookieChoices:
    """Store the visitor's choices in the consent cookie; for a signed-in person,
    also add them to the consent ledger (one row per purpose, every time). The
    removable cookies of third-party scripts whose consent is off are deleted."""
    choices = CookieChoices(decided=True, analytics=analytics, ab_testing=ab_testing)
    response.set_cookie(
        CONSENT_COOKIE,
        choices.encode(),
        max_age=CONSENT_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    if not ab_testing:
        response.delete_cookie(AB_COOKIE, samesite="Lax")
    # The cookies of third-party scripts whose consent is now off, where Pipetower can.
    for script in withdrawn_scripts(analytics=analytics, ab_testing=ab_testing):
        for cookie in script.removable:
            script_cookie_delete(response, cookie)
    user: Any = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        with transaction.atomic():
            for purpose, granted in ((ANALYTICS, analytics), (AB_TESTING, ab_testing)):
                consent_set(
                    user=user,
                    purpose=purpose,
                    granted=granted,
                    channel=Channel.COOKIE_BANNER,
                    wording_version=WORDING_VERSIONS[purpose],
                    request=request,
                )
    # The rest of this request (the middleware on the way out) sees the new choices.
    request.cookie_choices = choices  # type: ignore[attr-defined]
    forget_allowed(request)
    if hasattr(request, "_pt_ab"):
        del request._pt_ab
    return choices


def _increment(model: type[models.Model], **key: Any) -> None:
    manager = model._default_manager
    if manager.filter(**key).update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            manager.create(count=1, **key)
    except IntegrityError:  # another request created the row first
        manager.filter(**key).update(count=F("count") + 1)


def page_view_record(*, path: str, day: date | None = None) -> None:
    """One more view of a URL pattern today. Nothing about the visitor is stored."""
    _increment(PageView, path=path[:255], day=day or timezone.localdate())


def experiment_exposure_record(*, experiment: str, variant: str, day: date | None = None) -> None:
    """One more showing of a variant today. Nothing about the visitor is stored."""
    _increment(
        ExperimentExposure,
        experiment=experiment,
        variant=variant,
        day=day or timezone.localdate(),
    )

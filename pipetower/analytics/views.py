from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from pipetower.analytics import selectors
from pipetower.analytics.cookies import (
    AB_COOKIE,
    AB_MAX_AGE,
    CONSENT_COOKIE,
    CONSENT_MAX_AGE,
    CookieChoices,
    choices_of,
)
from pipetower.analytics.forms import CookieChoiceForm
from pipetower.analytics.scripts import configured_scripts, withdrawal_notice, withdrawn_scripts
from pipetower.analytics.services import cookie_choices_save


def _days(age: Any) -> str:
    days = int(age.total_seconds() // 86400)
    return f"{days} days"


def cookie_table() -> list[dict[str, str]]:
    """Every cookie Pipetower sets: name, purpose, lifetime, and whether it is optional."""
    session_days = int(settings.SESSION_COOKIE_AGE // 86400)
    rows = [
        {
            "name": settings.SESSION_COOKIE_NAME,
            "kind": "Strictly necessary",
            "purpose": "Keeps you signed in, and remembers steps in progress "
            "(for example the two-factor step of a sign-in).",
            "lifetime": f"{session_days} days, or until you sign out",
        },
        {
            "name": settings.CSRF_COOKIE_NAME,
            "kind": "Strictly necessary",
            "purpose": "Protects every form against requests forged by other websites.",
            "lifetime": f"{int(settings.CSRF_COOKIE_AGE // 86400)} days",
        },
        {
            "name": "messages",
            "kind": "Strictly necessary",
            "purpose": "Carries a one-time notice (such as “Saved”) to the next page.",
            "lifetime": "until the next page shows the notice",
        },
        {
            "name": CONSENT_COOKIE,
            "kind": "Strictly necessary",
            "purpose": "Remembers your cookie choices, so this banner does not ask again.",
            "lifetime": _days(CONSENT_MAX_AGE),
        },
        {
            "name": AB_COOKIE,
            "kind": "Optional: A/B testing",
            "purpose": "Remembers which version of a text you see (for example "
            "“onboarding:first_run”). Holds no identifier. Set only after you agree.",
            "lifetime": _days(AB_MAX_AGE),
        },
        {
            "name": "(none)",
            "kind": "Optional: analytics",
            "purpose": "Pipetower's own visit counts need no cookie: after you agree, a page "
            "view adds one to a count per page and day, and nothing about you is stored.",
            "lifetime": "—",
        },
    ]
    if getattr(settings, "ANALYTICS_SNIPPET_URL", ""):
        rows.append(
            {
                "name": "set by the analytics service",
                "kind": "Optional: analytics",
                "purpose": "This Pipetower's operator added an analytics service. Its script "
                "loads only after you agree to analytics cookies, and may set its own cookies.",
                "lifetime": "see the operator's privacy notice",
            }
        )
    rows.extend(script_cookie_rows())
    rows.append(
        {
            "name": "sign-in flow state (in the session)",
            "kind": "Strictly necessary",
            "purpose": "Sign-in, two-factor and Google sign-in keep their state inside the "
            f"{settings.SESSION_COOKIE_NAME} cookie; they set no cookie of their own.",
            "lifetime": "as the session",
        }
    )
    return rows


def script_cookie_rows() -> list[dict[str, str]]:
    """A row per cookie each of the operator's third-party scripts stores."""
    rows = []
    for script in configured_scripts():
        kind = f"Optional: {script.category_words} (third-party script: {script.name})"
        if not script.cookies:
            rows.append(
                {
                    "name": "(none)",
                    "kind": kind,
                    "purpose": f"{script.purpose}. Stores no cookie. Loaded only after you agree.",
                    "lifetime": "—",
                }
            )
        for cookie in script.cookies:
            if cookie.removable:
                removal = "If you withdraw, Pipetower removes it."
            else:
                where = cookie.domain or "another website"
                removal = (
                    f"Stored by {where}: if you withdraw, Pipetower cannot remove it; "
                    "remove it in your browser's settings."
                )
            rows.append(
                {
                    "name": cookie.name,
                    "kind": kind,
                    "purpose": f"{script.purpose}. Set only after you agree. {removal}",
                    "lifetime": cookie.lifetime or "as the script decides",
                }
            )
    return rows


def _safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("home")


@require_GET
def cookie_page(request: HttpRequest) -> HttpResponse:
    choices = choices_of(request)
    form = CookieChoiceForm(
        initial={
            "analytics": choices.analytics,
            "ab_testing": choices.ab_testing,
            # Without `next` the form comes back here (the Referer), with its notice.
            "next": _safe_next(request, next_url) if (next_url := request.GET.get("next")) else "",
        }
    )
    return render(
        request,
        "analytics/cookies.html",
        {
            "form": form,
            "choices": choices,
            "cookies": cookie_table(),
            "scripts": configured_scripts(),
        },
    )


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    """Save the visitor's choices: from the banner (Accept all, Reject all) or the
    cookie page (Save my choices). Answers JSON to the banner's script, else redirects."""
    form = CookieChoiceForm(request.POST)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
        choices = choices_of(request)
        return render(
            request,
            "analytics/cookies.html",
            {
                "form": form,
                "choices": choices,
                "cookies": cookie_table(),
                "scripts": configured_scripts(),
            },
            status=400,
        )
    choice = form.cleaned_data["choice"]
    # The cookie page sends `next`; the banner comes back to the page it was on.
    next_url = _safe_next(request, form.cleaned_data["next"] or _same_site_path(request))
    if choice == "choose":
        return HttpResponseRedirect(
            reverse("analytics:cookies") + "?next=" + _quote(next_url) + "#choices"
        )
    analytics = choice == "accept_all" or (choice == "save" and form.cleaned_data["analytics"])
    ab_testing = choice == "accept_all" or (choice == "save" and form.cleaned_data["ab_testing"])
    before = choices_of(request)
    withdrawn = [
        s
        for s in withdrawn_scripts(analytics=analytics, ab_testing=ab_testing)
        if before.grants(s.purpose_key)
    ]
    removed, not_removable, notice = withdrawal_notice(withdrawn)
    response: HttpResponse
    if wants_json:
        response = JsonResponse(
            {
                "ok": True,
                "analytics": analytics,
                "ab_testing": ab_testing,
                # The operator's scripts need a page load to be allowed in.
                "reload": _needs_reload(before, analytics=analytics, ab_testing=ab_testing),
                "removed_cookies": removed,
                "cookies_not_removable": not_removable,
                "notice": notice,
            }
        )
    else:
        response = HttpResponseRedirect(next_url)
    cookie_choices_save(
        request=request, response=response, analytics=analytics, ab_testing=ab_testing
    )
    if not wants_json:
        messages.success(request, "Your cookie choices are saved. Change them any time here.")
        if notice:
            messages.info(request, notice)
    return response


def _needs_reload(before: CookieChoices, *, analytics: bool, ab_testing: bool) -> bool:
    """Whether a newly allowed script must be let in by loading the page again."""
    if analytics and bool(getattr(settings, "ANALYTICS_SNIPPET_URL", "")):
        return True
    now = {"analytics_cookies": analytics, "ab_testing_cookies": ab_testing}
    return any(
        now[s.purpose_key] and not before.grants(s.purpose_key) for s in configured_scripts()
    )


def _same_site_path(request: HttpRequest) -> str:
    """The path of the page the form was sent from (the Referer), when it is on this site."""
    parts = urlsplit(request.headers.get("Referer", ""))
    if not parts.path or parts.netloc != request.get_host():
        return ""
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _quote(value: str) -> str:
    return quote(value, safe="/")


@require_GET
def blocked(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/blocked.html", {"cookies": cookie_table()})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form was refused, most often because cookies are blocked."""
    return render(
        request,
        "analytics/csrf_failure.html",
        {"cookies_missing": settings.CSRF_COOKIE_NAME not in request.COOKIES},
        status=403,
    )


@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    """Staff only: page views and experiment exposures of the last 30 days."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        raise PermissionDenied
    return render(
        request,
        "analytics/stats.html",
        {
            "pages": selectors.page_view_totals(days=30),
            "days": selectors.page_views_by_day(days=30),
            "exposures": selectors.exposure_totals(days=30),
        },
    )

"""Public pages of the registers: the subprocessor list (with subscribing to its
changes) and the transparency report of government and legal requests.

No sign-in needed. Thin: each write goes through one service in
`privacy.subprocessors`; the counts come from `privacy.legal_requests`."""

from __future__ import annotations

import math

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.core.ratelimit import FailureLimit
from pipetower.privacy import legal_requests, subprocessors

SUBPROCESSORS_PER_PAGE = 50
SUBSCRIBE_LIMIT = FailureLimit("subprocessor_subscribe", lambda: settings.SUBSCRIBE_RATE_LIMIT)


class SubscribeForm(forms.Form):
    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        help_text="We email you a link to confirm. Your address is kept only once you confirm.",
        error_messages={
            "required": "Enter the email address that should receive the news.",
            "invalid": "Enter a valid email address, like name@example.com.",
        },
    )


def _link_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return render(
        request,
        "privacy/subprocessors_link_error.html",
        {"message": exc.message},
        status=exc.status,
    )


@require_http_methods(["GET", "POST"])
def subprocessors_page(request: HttpRequest) -> HttpResponse:
    status, wait = 200, 0
    if request.method == "POST":
        form = SubscribeForm(request.POST)
        wait = SUBSCRIBE_LIMIT.wait(request)
        if wait:
            minutes = math.ceil(wait / 60)
            form.add_error(
                None,
                "Too many subscriptions from your network. Try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}.",
            )
            status = 429
        elif form.is_valid():
            SUBSCRIBE_LIMIT.hit(request)
            try:
                subprocessors.subscription_request(email=form.cleaned_data["email"])
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request,
                    "Thank you. Check your inbox: the subscription starts once you open the "
                    "link we sent.",
                )
                return redirect("privacy:subprocessors")
        if status == 200:
            status = 400
    else:
        form = SubscribeForm()
    page = Paginator(subprocessors.subprocessors_listed(), SUBPROCESSORS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    response = render(
        request,
        "privacy/subprocessors.html",
        {
            "page": page,
            "changes": subprocessors.subprocessor_changes_recent(),
            "form": form,
            "today": timezone.localdate(),
        },
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(wait)
    return response


@require_http_methods(["GET", "POST"])
def subprocessors_confirm(request: HttpRequest, token: str) -> HttpResponse:
    # Confirming takes a click (POST): mail scanners that open links confirm nothing.
    try:
        if request.method == "POST":
            subprocessors.subscription_confirm(token=token)
            messages.success(
                request,
                "Subscribed. We will email you whenever this list changes; every email has "
                "a link to unsubscribe.",
            )
            return redirect("privacy:subprocessors")
        email = subprocessors.subscription_confirm_check(token=token)
    except ServiceError as exc:
        return _link_error(request, exc)
    return render(request, "privacy/subprocessors_confirm.html", {"email": email})


@csrf_exempt  # mail clients post here for one-click unsubscribe (RFC 8058); the token is the proof
@require_http_methods(["GET", "POST"])
def subprocessors_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            subprocessors.subscription_cancel(token=token)
            return render(request, "privacy/subprocessors_unsubscribed.html")
        subscriber = subprocessors.subscription_resolve(token=token)
    except ServiceError as exc:
        return _link_error(request, exc)
    return render(request, "privacy/subprocessors_unsubscribe.html", {"email": subscriber.email})


@require_safe
def transparency(request: HttpRequest) -> HttpResponse:
    return render(
        request, "privacy/transparency.html", {"years": legal_requests.legal_requests_yearly()}
    )

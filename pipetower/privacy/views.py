"""Pages of the privacy center: the public "what we collect" page, consent and
restriction controls, rights requests and unsubscribe links. Thin: each write
goes through one service."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from pipetower.core.errors import ServiceError
from pipetower.core.markdown import render_markdown
from pipetower.core.ratelimit import FailureLimit
from pipetower.privacy import policy, rights_requests, selectors, services
from pipetower.privacy.consent import WORDING_VERSIONS, consent_set
from pipetower.privacy.forms import DataSubjectRequestForm, PublicRequestForm, RequestCodeForm
from pipetower.privacy.models import Channel, DataSubjectRequest, Purpose
from pipetower.support.interviews import interviews_for_user

HISTORY_PER_PAGE = 20
REQUEST_LIMIT = FailureLimit("privacy_request", lambda: settings.PRIVACY_REQUEST_RATE_LIMIT)
REQUESTS_PER_PAGE = 20
VERSIONS_PER_PAGE = 20


@require_safe
def what_we_collect(request: HttpRequest) -> HttpResponse:
    return render(request, "privacy/what_we_collect.html", {"groups": selectors.datamap_public()})


@login_required
@require_safe
def center(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    history = Paginator(selectors.consent_history(user=user), HISTORY_PER_PAGE)
    page = history.get_page(request.GET.get("page"))
    return render(
        request,
        "privacy/center.html",
        {
            "choices": selectors.consent_choices(user=user),
            "restriction": selectors.restriction_current(user=user),
            "history": page,
            "purpose_labels": dict(Purpose.choices),
            "interviews": interviews_for_user(user=user),
        },
    )


@login_required
@require_POST
def consent_change(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    purpose = request.POST.get("purpose", "")
    granted = request.POST.get("granted")
    if purpose not in Purpose.values or granted not in ("yes", "no"):
        messages.error(request, "That choice was not understood. Use the buttons below.")
        return redirect("privacy:center")
    consent_set(
        user=user,
        purpose=purpose,
        granted=granted == "yes",
        channel=Channel.WEB,
        wording_version=WORDING_VERSIONS[purpose],
        request=request,
    )
    label = Purpose(purpose).label
    if granted == "yes":
        messages.success(request, f"Thank you. You agreed to: {label}.")
    else:
        messages.success(request, f"Done. You withdrew your agreement to: {label}.")
    return redirect("privacy:center")


@login_required
@require_POST
def restriction_start(request: HttpRequest) -> HttpResponse:
    services.restriction_start(user=request.user, request=request)  # type: ignore[arg-type]
    messages.success(
        request,
        "Processing of your data is now limited to what the service needs. "
        "No newsletter, surveys, analytics or A/B tests will use your data.",
    )
    return redirect("privacy:center")


@login_required
@require_POST
def restriction_lift_request(request: HttpRequest) -> HttpResponse:
    try:
        services.restriction_lift_request(user=request.user, request=request)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "We emailed you. The restriction stays in place until you confirm with the link "
            "in that email.",
        )
    return redirect("privacy:center")


@login_required
@require_http_methods(["GET", "POST"])
def restriction_lift(request: HttpRequest, token: str) -> HttpResponse:
    user: Any = request.user
    try:
        if request.method == "POST":
            services.restriction_lift_confirm(user=user, token=token, request=request)
            messages.success(request, "The restriction is lifted. Your choices below apply again.")
            return redirect("privacy:center")
        services.restriction_lift_check(user=user, token=token)
    except ServiceError as exc:
        return render(
            request, "privacy/link_error.html", {"message": exc.message}, status=exc.status
        )
    return render(request, "privacy/restriction_lift.html")


@login_required
@require_http_methods(["GET", "POST"])
def requests_page(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if request.method == "POST":
        form = DataSubjectRequestForm(request.POST)
        if form.is_valid():
            try:
                services.data_subject_request_create(
                    user=user,
                    kind=form.cleaned_data["kind"],
                    details=form.cleaned_data["details"],
                    request=request,
                )
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                messages.success(
                    request, "We received your request and will answer within 30 days."
                )
                return redirect("privacy:requests")
    else:
        kind = request.GET.get("kind", "")
        form = DataSubjectRequestForm(
            initial={"kind": kind if kind in DataSubjectRequest.Kind.values else ""}
        )
    page = Paginator(selectors.data_subject_requests_for(user=user), REQUESTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "privacy/requests.html", {"form": form, "page": page})


@require_http_methods(["GET", "POST"])
def request_file(request: HttpRequest) -> HttpResponse:
    """A request from anyone, with or without an account: confirmed by an emailed code."""
    if request.user.is_authenticated:
        return redirect("privacy:requests")
    wait = 0
    if request.method == "POST":
        form = PublicRequestForm(request.POST)
        wait = REQUEST_LIMIT.wait(request)
        if wait:
            minutes = math.ceil(wait / 60)
            form.add_error(
                None,
                "Too many requests from your network. Try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}, or write to us from the "
                "contact page.",
            )
        elif form.is_valid():
            REQUEST_LIMIT.hit(request)
            try:
                dsr = rights_requests.data_subject_request_file(
                    email=form.cleaned_data["email"],
                    kind=form.cleaned_data["kind"],
                    details=form.cleaned_data["details"],
                    request=request,
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                token = rights_requests.data_subject_request_pending_token(dsr=dsr)
                return redirect("privacy:request_confirm", token=token)
        status = 429 if wait else 400
    else:
        kind = request.GET.get("kind", "")
        form = PublicRequestForm(
            initial={"kind": kind if kind in DataSubjectRequest.Kind.values else ""}
        )
        status = 200
    response = render(request, "privacy/request_file.html", {"form": form}, status=status)
    if wait:
        response["Retry-After"] = str(wait)
    return response


@require_http_methods(["GET", "POST"])
def request_confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        dsr = rights_requests.data_subject_request_pending_get(token=token)
    except ServiceError as exc:
        return render(
            request, "privacy/link_error.html", {"message": exc.message}, status=exc.status
        )
    form = RequestCodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and dsr.status == DataSubjectRequest.Status.UNCONFIRMED:
        status = 400
        if form.is_valid():
            try:
                dsr = rights_requests.data_subject_request_confirm(
                    dsr=dsr, code=form.cleaned_data["code"], request=request
                )
            except ServiceError as exc:
                form.add_error("code", exc.message)
                status = exc.status
            else:
                status = 200
    context = {"form": form, "dsr": dsr, "email": dsr.email}
    return render(request, "privacy/request_confirm.html", context, status=status)


@csrf_exempt  # mail clients post here for one-click unsubscribe (RFC 8058); the token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            _, purpose = services.unsubscribe(token=token, request=request)
            return render(
                request, "privacy/unsubscribed.html", {"purpose_label": Purpose(purpose).label}
            )
        _, purpose = services.unsubscribe_resolve(token=token)
    except ServiceError as exc:
        return render(
            request, "privacy/link_error.html", {"message": exc.message}, status=exc.status
        )
    return render(request, "privacy/unsubscribe.html", {"purpose_label": Purpose(purpose).label})


# ------------------------------------------------------------- policy versions


@require_safe
def policy_page(request: HttpRequest) -> HttpResponse:
    """The current privacy policy, and the earlier versions with what each changed."""
    current = policy.policy_current()
    earlier = policy.policy_versions()
    if current is not None:
        earlier = earlier.exclude(pk=current.pk)
    page = Paginator(earlier, VERSIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "privacy/policy.html",
        {
            "current": current,
            "policy_html": render_markdown(current.text) if current else "",
            "earlier": page,
        },
    )


@require_safe
def policy_version_page(request: HttpRequest, number: int) -> HttpResponse:
    version = policy.policy_version_get(number=number)
    if version is None:
        raise Http404("There is no such version of the privacy policy.")
    return render(
        request,
        "privacy/policy_version.html",
        {
            "version": version,
            "policy_html": render_markdown(version.text),
            "next_version": policy.policy_version_get(number=number + 1),
            "current": policy.policy_current(),
        },
    )


@login_required
@require_POST
def policy_acknowledge(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    number = request.POST.get("version", "")
    if not number.isdecimal() or len(number) > 9:
        messages.error(request, "That version was not understood. Use the button in the banner.")
    else:
        try:
            policy.policy_acknowledge(user=user, number=int(number), request=request)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Thank you: we noted that you have seen the change.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("privacy:policy")

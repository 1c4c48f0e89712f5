from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_POST, require_safe

from pipetower.accounts import selectors, services
from pipetower.accounts.forms import AvatarForm, ProfileForm
from pipetower.core.errors import ServiceError
from pipetower.core.http import client_ip

# The picture URL carries its version (?v=...), so that exact URL never changes content.
CACHE_VERSIONED = "private, max-age=31536000, immutable"
CACHE_UNVERSIONED = "private, no-cache"


def _render_profile(
    request: HttpRequest,
    *,
    profile_form: ProfileForm | None = None,
    avatar_form: AvatarForm | None = None,
) -> HttpResponse:
    user: Any = request.user
    profile_form = profile_form or ProfileForm(initial={"name": user.name})
    avatar_form = avatar_form or AvatarForm()
    if avatar_form.errors:
        # Focus goes to the field that needs attention.
        profile_form.fields["name"].widget.attrs.pop("autofocus", None)
        avatar_form.fields["avatar"].widget.attrs["autofocus"] = True
    context = {"profile_form": profile_form, "avatar_form": avatar_form}
    return render(request, "accounts/profile.html", context)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render_profile(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            services.user_update_profile(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                ip=client_ip(request),
            )
        except ServiceError as error:
            form.add_error("name", error.message)
        else:
            messages.success(request, "Your name is saved.")
            return redirect("accounts:profile")
    return _render_profile(request, profile_form=form)


@login_required
@require_POST
def avatar_upload(request: HttpRequest) -> HttpResponse:
    form = AvatarForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.user_avatar_set(
                user=request.user,  # type: ignore[arg-type]
                upload=form.cleaned_data["avatar"],
                ip=client_ip(request),
            )
        except ServiceError as error:
            form.add_error("avatar", error.message)
        else:
            messages.success(request, "Your picture is updated.")
            return redirect("accounts:profile")
    return _render_profile(request, avatar_form=form)


@login_required
@require_POST
def avatar_remove(request: HttpRequest) -> HttpResponse:
    services.user_avatar_remove(user=request.user, ip=client_ip(request))  # type: ignore[arg-type]
    messages.success(request, "Your picture is removed.")
    return redirect("accounts:profile")


@require_safe
def avatar(request: HttpRequest, user_id: int) -> HttpResponseBase:
    """A person's picture, for themself and the people they share a team with."""
    person = selectors.user_get_visible(viewer=request.user, user_id=user_id)
    if not person.avatar:
        raise Http404("No picture.")
    version = person.avatar_version
    etag = f'"{version}"'
    response: HttpResponseBase | None = get_conditional_response(request, etag=etag)
    if response is None:
        storage: Storage = person.avatar.storage
        try:
            handle = storage.open(str(person.avatar.name), "rb")
        except FileNotFoundError:
            raise Http404("No picture.") from None
        response = FileResponse(handle, content_type="image/webp", filename="avatar.webp")
    response["ETag"] = etag
    response["Cache-Control"] = (
        CACHE_VERSIONED if request.GET.get("v") == version else CACHE_UNVERSIONED
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# The address of the latest confirmation email sent in this browser, so that
# "Check your email" can offer to send it again (set by the account adapter).
CONFIRM_EMAIL_SESSION_KEY = "pipetower_confirm_email"


@require_POST
def confirmation_resend(request: HttpRequest) -> HttpResponse:
    """'Send the link again' on the Check your email page (signed out)."""
    email = str(request.POST.get("email") or request.session.get(CONFIRM_EMAIL_SESSION_KEY, ""))
    services.email_confirmation_resend(request=request, email=email)
    messages.info(
        request,
        "If that address is waiting for confirmation, a new link is on its way. "
        "You can ask again in three minutes; earlier links keep working.",
    )
    return redirect("account_email_verification_sent")

"""Contact form and survey answers. Thin: each write goes through one service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.support import interviews, services
from pipetower.support.forms import ContactForm, InterviewAnswerForm
from pipetower.support.models import Survey, SurveyResponse


@require_http_methods(["GET", "POST"])
def contact(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    initial = {"email": user.email} if user.is_authenticated else {}
    if request.method == "POST":
        form = ContactForm(request.POST, initial=initial)
        if form.is_valid():
            try:
                services.correspondence_create(user=user, **form.cleaned_data)
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request, "Thank you. We received your message and will answer by email."
                )
                return redirect("support:contact")
    else:
        form = ContactForm(initial=initial)
    return render(request, "support/contact.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, survey_id: int) -> HttpResponse:
    user: Any = request.user
    found = Survey.objects.filter(pk=survey_id, sent_at__isnull=False).first()
    if found is None:
        raise Http404("No such survey.")
    questions = found.question_list
    answered = SurveyResponse.objects.filter(survey=found, user=user).exists()
    error = ""
    answers = [""] * len(questions)
    if request.method == "POST" and not answered:
        answers = [request.POST.get(f"q{i}", "") for i in range(len(questions))]
        try:
            services.survey_response_submit(survey=found, user=user, answers=answers)
        except ServiceError as exc:
            error = exc.message
        else:
            messages.success(request, "Thank you for your answers.")
            return redirect("support:survey", survey_id=found.pk)
    return render(
        request,
        "support/survey.html",
        {
            "survey": found,
            "rows": list(zip(range(len(questions)), questions, answers, strict=True)),
            "answered": answered,
            "error": error,
        },
        status=400 if error else 200,
    )


def _interview_link_error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "support/interview_link_error.html", {"message": message}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def interview(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation: accept or decline, allow or refuse a recording, withdraw it."""
    user: Any = request.user
    found = interviews.interview_get_for_token(token=token, user=user)
    if found is None:
        return _interview_link_error(
            request,
            "This invitation link is unknown, or it was sent to another account. Sign in "
            "with the account the invitation was sent to, and open the link from that email.",
            404,
        )
    status = 200
    form = InterviewAnswerForm(
        initial={
            "attend": {"accepted": "yes", "declined": "no"}.get(found.status),
            "recording": None
            if found.recording_allowed is None
            else ("yes" if found.recording_allowed else "no"),
        }
    )
    if request.method == "POST":
        if request.POST.get("withdraw"):
            try:
                interviews.interview_recording_withdraw(interview=found, user=user, request=request)
            except ServiceError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    "Done. We will not record this interview, and any recording is deleted.",
                )
            return redirect("support:interview", token=token)
        form = InterviewAnswerForm(request.POST)
        if form.is_valid():
            try:
                interviews.interview_respond(
                    interview=found,
                    user=user,
                    attend=form.cleaned_data["attend"] == "yes",
                    recording=form.cleaned_data["recording"] == "yes",
                    request=request,
                )
            except ServiceError as exc:
                add_service_error(form, exc)
                status = exc.status
            else:
                messages.success(request, "Thank you. Your answer is saved.")
                return redirect("support:interview", token=token)
        else:
            status = 400
    found.refresh_from_db()
    if found.expired and status == 200:
        status = 410
    return render(
        request, "support/interview.html", {"interview": found, "form": form}, status=status
    )


@login_required
@require_POST
def interview_recording_withdraw(request: HttpRequest) -> HttpResponse:
    """From the privacy center: withdraw the permission to record one interview."""
    user: Any = request.user
    found = interviews.interview_get_for_user(user=user, interview_id=request.POST.get("interview"))
    if found is None:
        messages.error(request, "That interview was not found among yours.")
        return redirect("privacy:center")
    try:
        interviews.interview_recording_withdraw(interview=found, user=user, request=request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Done. We will not record “{found.topic}”, and any recording is deleted.",
        )
    return redirect(reverse("privacy:center") + "#interviews-heading")

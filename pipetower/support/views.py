"""Contact form and survey answers. Thin: each write goes through one service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from pipetower.core.errors import ServiceError
from pipetower.core.forms import add_service_error
from pipetower.support import services
from pipetower.support.forms import ContactForm
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

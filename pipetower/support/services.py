"""Writes of the support app: contact messages, newsletters and surveys.

Newsletters and surveys are optional processing: each recipient is checked
with `privacy.consent.processing_allowed`, so only people who agreed and have
not restricted processing receive them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from pipetower.core.errors import Conflict, ServiceError
from pipetower.privacy.consent import consenting_candidates, processing_allowed
from pipetower.privacy.models import Purpose
from pipetower.privacy.services import unsubscribe_url
from pipetower.support.models import Correspondence, Newsletter, Survey, SurveyResponse

if TYPE_CHECKING:
    from pipetower.accounts.models import User


def correspondence_create(
    *, user: User | None, email: str, subject: str, body: str
) -> Correspondence:
    """Keep a message someone sent us, so we can answer and refer to it later."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError("Enter the email address we should answer to.", field="email") from None
    subject, body = subject.strip(), body.strip()
    if not subject:
        raise ServiceError("Give your message a subject.", field="subject")
    if len(subject) > 200:
        raise ServiceError("Keep the subject under 200 characters.", field="subject")
    if not body:
        raise ServiceError("Write your message.", field="body")
    if len(body) > 10000:
        raise ServiceError("Keep the message under 10,000 characters.", field="body")
    signed_in = user if user is not None and user.is_authenticated else None
    return Correspondence.objects.create(user=signed_in, email=email, subject=subject, body=body)


def _recipients(purpose: str) -> list[User]:
    """Everyone an optional mailing may reach: consented and not restricted."""
    return [
        u
        for u in consenting_candidates(purpose=purpose)
        if processing_allowed(user=u, purpose=purpose)
    ]


def newsletter_send(*, newsletter: Newsletter) -> int:
    """Send an issue to everyone who agreed to the newsletter and has not limited
    processing. Each email carries a signed one-click unsubscribe link. Answers
    how many were sent; an issue is sent once."""
    with transaction.atomic():
        locked = Newsletter.objects.select_for_update().get(pk=newsletter.pk)
        if locked.sent_at is not None:
            raise Conflict("This newsletter was already sent.")
        locked.sent_at = timezone.now()
        locked.save(update_fields=["sent_at"])
    count = 0
    for user in _recipients(Purpose.NEWSLETTER):
        link = unsubscribe_url(user=user, purpose=Purpose.NEWSLETTER)
        EmailMessage(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{newsletter.subject}",
            body=(
                f"{newsletter.body.strip()}\n\n--\n"
                "You receive this because you asked for Pipetower's newsletter.\n"
                f"Unsubscribe with one click: {link}\n"
            ),
            to=[user.email],
            headers={
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        ).send()
        count += 1
    Newsletter.objects.filter(pk=newsletter.pk).update(sent_count=count)
    newsletter.refresh_from_db()
    return count


def survey_send(*, survey: Survey) -> int:
    """Invite everyone who agreed to product surveys (and has not limited
    processing) to answer. Answers how many invitations were sent."""
    if not survey.question_list:
        raise ServiceError("Add at least one question before sending the survey.")
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        if locked.sent_at is not None:
            raise Conflict("This survey was already sent.")
        locked.sent_at = timezone.now()
        locked.save(update_fields=["sent_at"])
    link = settings.BASE_URL + reverse("support:survey", args=[survey.pk])
    count = 0
    for user in _recipients(Purpose.PRODUCT_SURVEYS):
        stop = unsubscribe_url(user=user, purpose=Purpose.PRODUCT_SURVEYS)
        EmailMessage(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}A short survey: {survey.title}",
            body=(
                f"Hello {user.display_name},\n\nWould you answer a few questions? It is optional.\n"
                f"{link}\n\n--\nYou receive this because you agreed to product surveys.\n"
                f"Stop receiving surveys with one click: {stop}\n"
            ),
            to=[user.email],
            headers={
                "List-Unsubscribe": f"<{stop}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        ).send()
        count += 1
    Survey.objects.filter(pk=survey.pk).update(sent_count=count)
    survey.refresh_from_db()
    return count


def survey_response_submit(*, survey: Survey, user: User, answers: list[str]) -> SurveyResponse:
    if survey.sent_at is None:
        raise ServiceError("This survey is not open.")
    questions = survey.question_list
    if len(answers) != len(questions):
        raise ServiceError("Answer each question, or leave it empty.")
    cleaned = [a.strip()[:5000] for a in answers]
    if not any(cleaned):
        raise ServiceError("Answer at least one question.")
    try:
        return SurveyResponse.objects.create(
            survey=survey,
            user=user,
            answers=[{"question": q, "answer": a} for q, a in zip(questions, cleaned, strict=True)],
        )
    except IntegrityError:
        raise Conflict("You already answered this survey. Thank you!") from None

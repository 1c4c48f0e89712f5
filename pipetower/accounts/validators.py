from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from zxcvbn import zxcvbn


class StrengthValidator:
    """Rejects guessable passwords using the zxcvbn strength estimate (0 to 4)."""

    def __init__(self, min_score: int = 3) -> None:
        self.min_score = min_score

    def validate(self, password: str, user: Any = None) -> None:
        inputs = [v for v in (getattr(user, "email", ""), getattr(user, "name", "")) if v]
        result = zxcvbn(password[:128], user_inputs=inputs)
        if result["score"] < self.min_score:
            feedback = result.get("feedback") or {}
            hints = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
            hint = " ".join(h for h in hints if h)
            raise ValidationError(
                "This password is too easy to guess. " + (hint or "Add more unrelated words."),
                code="password_too_weak",
            )

    def get_help_text(self) -> str:
        return "Use a long passphrase of unrelated words; guessable passwords are refused."

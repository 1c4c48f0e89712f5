"""Signing in cancels a scheduled account deletion, and says so."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest


def connect() -> None:
    from allauth.account.signals import user_logged_in

    user_logged_in.connect(on_user_logged_in, dispatch_uid="pipetower.privacy.deletion_cancel")


def on_user_logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    from pipetower.privacy.deletion import account_deletion_cancel

    if account_deletion_cancel(user=user, request=request):
        messages.success(
            request, "Welcome back. Your account was scheduled for deletion; that is cancelled."
        )

"""The sign-in form: allauth's, in Pipetower's words.

A module of its own: allauth's forms module imports ACCOUNT_SIGNUP_FORM_CLASS
(pipetower.accounts.forms) while it loads, so that module cannot import it back.
"""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm as AllauthLoginForm


class LoginForm(AllauthLoginForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "remember" in self.fields:
            self.fields["remember"].label = "Keep me signed in on this browser"

"""allauth's sign-up form, doing the same work whether or not the address is taken.

With `ACCOUNT_PREVENT_ENUMERATION` allauth answers an address that already has
an account like a new one, but skips creating the account, and so skips hashing
the password: the answer came back ten times faster (27 ms against 336 ms),
which told anyone timing it that the address has an account. Here the taken
path hashes the typed password once too, with the same hasher, and both paths
send exactly one email (the confirmation link, or "someone tried to sign up
with your address"), rendered and sent the same way by the account adapter.

This lives apart from `pipetower.accounts.forms`, which allauth imports while
building its own forms (`ACCOUNT_SIGNUP_FORM_CLASS`).
"""

from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest


class SignupForm(AllauthSignupForm):
    def try_save(self, request: HttpRequest) -> tuple[Any, Any]:
        if self.account_already_exists:
            # The work creating the account would do: one password hash, thrown away.
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)

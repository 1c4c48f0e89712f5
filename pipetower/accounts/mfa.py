"""Two-factor authentication: how Pipetower bends django-allauth's MFA app.

allauth stores each authenticator's secrets (the TOTP key, the seed the
recovery codes are derived from) in a JSON column and passes them through
`MFAAdapter.encrypt/decrypt`. Here they are encrypted with the account's own
data key (`pipetower.core.crypto`, AES-256-GCM), so the database never holds a
TOTP secret in the clear and deleting an account shreds its secrets too.

A stored value reads ``mfa1:<user id>:<ciphertext>``. The user id is bound into
the ciphertext's associated data, and the ciphertext must be under that user's
data key; when the request tells whose authenticator is being used (the person
signed in, or the person in the two-factor step of signing in), a value made
for anyone else is refused. So copying one person's TOTP secret into another
person's authenticator row does not let the copier's app sign in as them.
"""

from __future__ import annotations

from typing import Any

from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled

from pipetower.core import crypto

PREFIX = "mfa1"
# The factors that make an account two-factor: recovery codes only back them up.
SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def _context(user_id: int) -> str:
    return f"allauth.mfa.authenticator:user={user_id}"


def has_two_factor(user: Any) -> bool:
    """True when `user` signs in with an authenticator app or a security key."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(is_mfa_enabled(user, list(SECOND_FACTORS)))


def two_factor_code_refusal(user: Any, code: str) -> str:
    """For a confirmation that needs a current two-factor code on top of the
    re-authentication (deleting an account or a team): why `code` does not do,
    or "" when it does or the account has no two-factor authentication."""
    if not has_two_factor(user):
        return ""
    from allauth.mfa.base.forms import BaseAuthenticateForm

    if BaseAuthenticateForm(data={"code": code}, user=user).is_valid():
        return ""
    return "That code is not correct or was already used. Enter a current one."


def _acting_user() -> Any | None:
    """Whose authenticator this request uses: the signed-in person, or the person
    part-way through signing in (allauth's login stage), or None when unknown."""
    request = context.request
    if request is None:
        return None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    stage = getattr(request, "_login_stage", None)
    login = getattr(stage, "login", None)
    return getattr(login, "user", None)


class MFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "incorrect_code": (
            "That code is not right. Enter the current code from your authenticator app "
            "(each code works once), or one of your unused recovery codes."
        ),
        "unverified_email": (
            "Confirm your email address before you turn on two-factor authentication: "
            "it is how you get back in if you lose your device."
        ),
    }

    def encrypt(self, text: str) -> str:
        user = _acting_user()
        if user is None or user.pk is None:
            raise crypto.CryptoError(
                "Two-factor secrets can only be stored for a signed-in person."
            )
        token = crypto.encrypt(text, data_key=user.encryption_key(), context=_context(user.pk))
        return f"{PREFIX}:{user.pk}:{token}"

    def decrypt(self, encrypted_text: str) -> str:
        prefix, _, rest = encrypted_text.partition(":")
        user_id, _, token = rest.partition(":")
        if prefix != PREFIX or not user_id.isdigit() or not token:
            raise crypto.DecryptionError(
                "A two-factor secret is stored in a form Pipetower does not recognise."
            )
        owner_id = int(user_id)
        acting = _acting_user()
        if acting is not None and acting.pk != owner_id:
            raise crypto.DecryptionError(
                "A two-factor secret belongs to another account: it was copied or moved."
            )
        from pipetower.accounts.models import User

        data_key_id = User.objects.filter(pk=owner_id).values_list("data_key_id", flat=True).first()
        if data_key_id is None:
            raise crypto.DecryptionError("The account this two-factor secret belongs to is gone.")
        return crypto.decrypt(token, context=_context(owner_id), data_key_id=data_key_id)

    def generate_authenticator_name(self, user: Any, type: Authenticator.Type) -> str:
        count = Authenticator.objects.filter(user_id=user.pk, type=type).count()
        return f"Security key {count + 1}"

    def get_totp_label(self, user: Any) -> str:
        return str(getattr(user, "email", "") or super().get_totp_label(user))

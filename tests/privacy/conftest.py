from __future__ import annotations

from pipetower.accounts.models import User
from pipetower.privacy.consent import WORDING_VERSIONS, consent_set
from pipetower.privacy.models import Channel


def grant(user: User, purpose: str, *, granted: bool = True, channel: str = Channel.WEB) -> None:
    consent_set(
        user=user,
        purpose=purpose,
        granted=granted,
        channel=channel,
        wording_version=WORDING_VERSIONS[purpose],
    )

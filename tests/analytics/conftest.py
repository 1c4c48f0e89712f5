from __future__ import annotations

import pytest
from django.test import Client

from pipetower.accounts.models import User
from pipetower.analytics.cookies import CONSENT_COOKIE, CookieChoices
from pipetower.privacy.models import ProcessingRestriction


def consent_cookie(*, analytics: bool, ab_testing: bool) -> str:
    return CookieChoices(decided=True, analytics=analytics, ab_testing=ab_testing).encode()


@pytest.fixture
def accepted_client(client: Client) -> Client:
    """A visitor whose browser agreed to every optional cookie."""
    client.cookies[CONSENT_COOKIE] = consent_cookie(analytics=True, ab_testing=True)
    return client


@pytest.fixture
def restricted_user(user: User) -> User:
    ProcessingRestriction.objects.create(user=user)
    return user

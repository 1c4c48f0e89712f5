"""Sign-up does the same work for a taken address as for a new one (issue 9, finding 8).

Timing is not measured (it would be a flaky test); the work that made the
difference is counted instead: password hashes and emails sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from pipetower.accounts.models import User
from tests.accounts.test_signup import signup_data
from tests.factories import UserFactory


class CountingHasher(MD5PasswordHasher):
    """The test suite's fast hasher, counting how many passwords it hashed."""

    algorithm = "counting_md5"
    hashed: ClassVar[list[str]] = []

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.hashed.append(password)
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings: Any) -> type[CountingHasher]:
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.hashed.clear()
    return CountingHasher


@pytest.mark.parametrize("taken", [False, True], ids=["new address", "taken address"])
def test_both_paths_hash_the_password_once_and_send_one_email(
    client: Any, db: None, mailoutbox: list[Any], committed: Any, counting_hasher: Any, taken: bool
) -> None:
    UserFactory(email="taken@example.com", name="Owner")
    counting_hasher.hashed.clear()
    email = "taken@example.com" if taken else "fresh@example.com"

    with committed():
        response = client.post("/accounts/signup/", signup_data(email=email))

    assert response.status_code == 302
    assert counting_hasher.hashed == [signup_data()["password1"]]
    assert [m.to for m in mailoutbox] == [[email]]
    assert User.objects.filter(email=email).count() == 1

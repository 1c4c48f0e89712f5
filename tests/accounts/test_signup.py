"""Sign-up: email, name and password, confirmed by an emailed link."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from pipetower.accounts.models import User
from tests.accounts.conftest import STRONG_PASSWORD, input_tag, link_in
from tests.factories import UserFactory


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "password1": STRONG_PASSWORD,
        "password2": STRONG_PASSWORD,
    }
    data.update(overrides)
    return data


def test_signup_form_asks_for_name_first_then_email_and_password(client, db):
    response = client.get("/accounts/signup/")
    form = response.context["form"]
    assert list(form.fields)[:4] == ["name", "email", "password1", "password2"]
    html = response.content.decode()
    assert html.index('name="name"') < html.index('name="email"') < html.index('name="password1"')
    assert "autofocus" in input_tag(html, "name")
    assert html.count("autofocus") == 1


def test_signup_creates_an_unverified_account_and_emails_a_confirmation_link(
    client, db, mailoutbox, committed
):
    with committed():
        response = client.post("/accounts/signup/", signup_data(), REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="grace@example.com")
    assert user.name == "Grace Hopper"
    assert user.signup_ip == "203.0.113.9"
    assert user.check_password(STRONG_PASSWORD)
    assert not EmailAddress.objects.get(user=user).verified
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["grace@example.com"]
    assert "Pipetower" in mailoutbox[0].subject


def test_verification_sent_page_tells_the_person_to_check_their_email(client, db, committed):
    with committed():
        response = client.post("/accounts/signup/", signup_data(), follow=True)
    assert b"Check your email" in response.content
    assert b"Pipetower" in response.content


def test_the_emailed_link_confirms_the_address_and_signs_the_person_in(
    client, db, mailoutbox, committed
):
    with committed():
        client.post("/accounts/signup/", signup_data())
    path = link_in(mailoutbox[0])

    page = client.get(path)
    assert page.status_code == 200
    assert b"grace@example.com" in page.content
    with committed():
        response = client.post(path)

    assert response.status_code == 302
    user = User.objects.get(email="grace@example.com")
    assert EmailAddress.objects.get(user=user).verified
    assert client.get("/account/profile/").status_code == 200


def test_unconfirmed_account_cannot_sign_in_and_gets_a_new_link(client, db, mailoutbox, committed):
    with committed():
        client.post("/accounts/signup/", signup_data())
    client.logout()
    with committed():
        response = client.post(
            "/accounts/login/", {"login": "grace@example.com", "password": STRONG_PASSWORD}
        )
    assert response["Location"] == "/accounts/confirm-email/"
    assert client.get("/account/profile/").status_code == 302  # still signed out


def test_signup_with_an_existing_email_looks_the_same_and_warns_the_owner(
    client, db, mailoutbox, committed
):
    UserFactory(email="taken@example.com", name="Owner")
    with committed():
        new = client.post("/accounts/signup/", signup_data(email="fresh@example.com"), follow=True)
    client.cookies.clear()
    with committed():
        existing = client.post(
            "/accounts/signup/", signup_data(email="taken@example.com"), follow=True
        )

    assert existing.redirect_chain == new.redirect_chain == [("/accounts/confirm-email/", 302)]
    assert [t.name for t in existing.templates] == [t.name for t in new.templates]
    assert b"already" not in existing.content
    assert User.objects.filter(email="taken@example.com").count() == 1
    warning = mailoutbox[-1]
    assert warning.to == ["taken@example.com"]
    assert "tried to sign up" in warning.subject
    assert "already an account" in warning.body
    assert "/accounts/password/reset/" in warning.body


def test_signup_email_is_matched_without_regard_to_case(client, db, mailoutbox, committed):
    UserFactory(email="taken@example.com")
    with committed():
        client.post("/accounts/signup/", signup_data(email="Taken@Example.COM"))
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert mailoutbox[-1].to == ["taken@example.com"]


def test_mismatched_passwords_are_refused_with_a_message(client, db):
    response = client.post(
        "/accounts/signup/", signup_data(password2="plum tractor violet harbour 94")
    )
    assert response.status_code == 200
    assert "You must type the same password each time." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not User.objects.exists()


def test_blank_name_is_refused_with_a_message(client, db):
    response = client.post("/accounts/signup/", signup_data(name="   "))
    assert response.status_code == 200
    assert "Enter your name" in response.content.decode()
    assert not User.objects.exists()


def test_short_password_is_refused_with_a_message(client, db):
    response = client.post(
        "/accounts/signup/", signup_data(password1="Xk3#vq9", password2="Xk3#vq9")
    )
    assert "at least 12 characters" in response.content.decode()
    assert not User.objects.exists()


def test_common_password_is_refused_with_a_message(client, db):
    response = client.post(
        "/accounts/signup/", signup_data(password1="password1234", password2="password1234")
    )
    html = response.content.decode()
    assert "too common" in html
    assert not User.objects.exists()


def test_weak_but_long_password_is_refused_with_advice(client, db):
    response = client.post(
        "/accounts/signup/", signup_data(password1="aaaaaaaaaaaa", password2="aaaaaaaaaaaa")
    )
    html = response.content.decode()
    assert "too easy to guess" in html
    assert not User.objects.exists()


def test_password_made_of_the_persons_own_name_is_refused(client, db):
    password = "zebulon quackenbush 7"
    response = client.post(
        "/accounts/signup/",
        signup_data(name="Zebulon Quackenbush", password1=password, password2=password),
    )
    assert response.context["form"].errors["password1"]
    assert not User.objects.exists()


def test_the_same_password_is_fine_for_someone_with_another_name(client, db, committed):
    password = "zebulon quackenbush 7"
    with committed():
        response = client.post(
            "/accounts/signup/", signup_data(password1=password, password2=password)
        )
    assert response.status_code == 302
    assert User.objects.filter(email="grace@example.com").exists()


def test_signup_form_errors_are_shown_next_to_their_field(client, db):
    response = client.post("/accounts/signup/", signup_data(email="not-an-email"))
    html = response.content.decode()
    assert 'id="id_email_error"' in html
    tag = input_tag(html, "email")
    assert 'aria-invalid="true"' in tag
    assert "id_email_error" in tag
    assert "autofocus" in tag  # focus goes to the field that needs attention


def test_check_your_email_sends_the_link_again(client, db, mailoutbox, committed):
    from django.core.cache import cache

    with committed():
        client.post("/accounts/signup/", signup_data())
    assert len(mailoutbox) == 1
    page = client.get("/accounts/confirm-email/").content.decode()
    assert "Send the link again" in page
    assert 'value="grace@example.com"' in page  # the address just used, ready to resend

    # Within the rate limit's three minutes nothing more is sent, and the page says so.
    with committed():
        answer = client.post("/account/confirm-email/resend/", {"email": "grace@example.com"})
    assert answer.status_code == 302 and answer["Location"] == "/accounts/confirm-email/"
    assert len(mailoutbox) == 1
    assert "You can ask again in three minutes" in client.get(answer["Location"]).content.decode()

    cache.clear()  # three minutes later
    with committed():
        client.post("/account/confirm-email/resend/", {"email": "grace@example.com"})
    assert len(mailoutbox) == 2
    assert link_in(mailoutbox[1]).startswith("/accounts/confirm-email/")


def test_resending_to_an_unknown_or_confirmed_address_sends_nothing_and_says_the_same(
    client, db, mailoutbox, committed
):
    UserFactory(email="known@example.com")  # verified
    answers = []
    with committed():
        for email in ("nobody@example.com", "known@example.com"):
            answer = client.post("/account/confirm-email/resend/", {"email": email}, follow=True)
            answers.append(answer.content.decode().count("a new link is on its way"))
    assert mailoutbox == []
    assert answers == [1, 1]

"""No back-office page and no staff path shows a team's content without a grant.

Generated, not hand-listed: every model that belongs to a team (found through
its foreign keys, so a new model is covered the day it is added) gets a row
with a marker planted in every text field; then every URL of every registered
admin (from `admin.site._registry` and the admin site's own URLs) and every
path under a team (from the URL configuration, pages and API) is fetched as a
staff superuser without a grant, and the marker must not appear. A planted
leak proves the check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from pipetower.privacy import support_access
from pipetower.privacy.models import StaffAccess
from pipetower.teams.models import Membership, Role, Team
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MARKER = "zqxmarker7731"
# Text that is not the team's content and that the back office may show: the
# team's name (which customer staff are talking to), codes Pipetower writes, and
# what a team wrote for staff to read when granting access. Anything else found
# on a page is a leak.
SHOWN_TEXT = {
    "teams.Team.name",
    "teams.Team.slug",
    "audit.AuditEvent.verb",
    "privacy.SupportGrant.reason",
    "privacy.StaffAccess.staff_label",
    "privacy.StaffAccess.path",
    "privacy.StaffAccess.page",
    "privacy.StaffAccess.method",
    # A token's name is its owner's label, not team content; staff see token
    # metadata to revoke a leaked one, whether or not it is limited to a team.
    "api.ApiToken.name",
    "api.ApiToken.prefix",
}
# Long polls that wait for a change before answering: fetched without a grant
# only (where they answer 404 at once).
WAITING_PATHS = re.compile(r"/(live|stream)$")


def _user_model() -> Any:
    return apps.get_model(settings.AUTH_USER_MODEL)


def team_models() -> list[type[models.Model]]:
    """Team plus every model whose foreign keys lead to a team, parents first."""
    found: list[type[models.Model]] = [Team]
    changed = True
    while changed:
        changed = False
        for model in apps.get_models():
            if model in found or model._meta.app_config.name.startswith("tests"):  # type: ignore[union-attr]
                continue
            if any(f.is_relation for f in model._meta.concrete_fields if f.related_model in found):
                found.append(model)
                changed = True
    return found


def _value(field: models.Field, label: str) -> Any:  # type: ignore[type-arg]
    if field.choices:
        return field.choices[0][0]
    if label in SHOWN_TEXT or isinstance(
        field, (models.FileField, models.GenericIPAddressField, models.BinaryField)
    ):
        return field.get_default() if not field.null else None
    if isinstance(field, models.EmailField):
        return f"{MARKER}@example.com"
    if isinstance(field, models.JSONField):
        return {"planted": MARKER}
    if isinstance(field, (models.CharField, models.TextField)):
        return MARKER if not field.max_length else MARKER[: field.max_length]
    return None


def _fill(model: type[models.Model], planted: dict[type, models.Model], owner: Any) -> dict:
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        label = f"{model._meta.label}.{field.name}"
        if field.primary_key:
            continue
        if field.is_relation:
            if field.related_model is _user_model():
                values[field.name] = owner
            elif field.related_model in planted:
                values[field.name] = planted[field.related_model]  # type: ignore[index]
            continue
        value = _value(field, label)
        if value is not None:
            values[field.name] = value
        elif not field.null and not field.has_default():
            if isinstance(field, models.DateTimeField):
                values[field.name] = timezone.now() + timedelta(days=1)
            elif isinstance(field, models.DateField):
                values[field.name] = timezone.now().date()
            elif isinstance(field, (models.IntegerField, models.FloatField)):
                values[field.name] = 1
            elif isinstance(field, models.BooleanField):
                values[field.name] = False
    return values


@pytest.fixture
def planted(db: None) -> dict[type, models.Model]:
    owner = UserFactory(email="owner@example.com", name="Owner")
    team = Team.objects.create(name="Acme", slug="acme", created_by=owner)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    rows: dict[type, models.Model] = {Team: team}
    for model in team_models()[1:]:
        values = _fill(model, rows, owner)
        if model is Membership:
            values["user"] = UserFactory(email="member@example.com")
        if model._meta.label == "audit.AuditEvent":
            values["verb"] = "action.updated"
        if model._meta.label == "privacy.SupportGrant":
            values["expires_at"] = timezone.now() - timedelta(days=1)  # not active
        rows[model] = model._default_manager.create(**values)
    return rows


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(
        UserFactory(email="staff@pipetower.example", is_staff=True, is_superuser=True)
    )
    return client


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def admin_urls(planted: dict[type, models.Model]) -> Iterator[str]:
    """Every URL of the admin site and of every registered model admin."""
    for model, model_admin in admin.site._registry.items():
        obj = planted.get(model) or model._default_manager.first()
        for pattern in model_admin.urls:
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
            if params and obj is None:
                continue
            # Every parameter of a model admin's URL is the object's id.
            yield reverse(f"admin:{pattern.name}", kwargs={name: obj.pk for name in params if obj})
    labels = {model._meta.app_label for model in admin.site._registry}
    for pattern in admin.site.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        if pattern.name in ("logout", "login"):
            continue
        route = str(pattern.pattern)
        if "app_label" in route:
            for label in sorted(labels):
                yield reverse(f"admin:{pattern.name}", kwargs={"app_label": label})
        elif "content_type_id" in route:
            for model, obj in planted.items():
                ct = ContentType.objects.get_for_model(model)
                yield reverse(
                    f"admin:{pattern.name}",
                    kwargs={"content_type_id": ct.pk, "object_id": obj.pk},
                )
        elif "<" not in route:
            yield reverse(f"admin:{pattern.name}")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def team_paths(planted: dict[type, models.Model]) -> list[str]:
    """Every page and API path under a team, from the URL configuration, with the
    planted rows' ids filled in (`run_id` is the planted Run's, and so on)."""
    by_name = {m._meta.model_name: obj for m, obj in planted.items()}
    by_name["target"] = by_name["runtarget"]
    by_name["member"] = by_name["membership"]
    by_name["grant"] = by_name["supportgrant"]
    by_name["rule"] = by_name["notificationrule"]
    # An action's version is named by its number, not its id.
    by_name["n"] = SimpleNamespace(pk=by_name["actionversion"].number)  # type: ignore[assignment,attr-defined]
    team = planted[Team]

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in ("team_slug", "slug"):
            return team.slug  # type: ignore[attr-defined]
        obj = by_name.get(name.removesuffix("_id"))
        assert obj is not None, f"no planted row for the URL parameter {name!r}: add it"
        return str(obj.pk)

    paths = []
    for route in _walk(get_resolver().url_patterns):
        if "<slug:team_slug>" not in route and "<slug>" not in route:
            continue
        paths.append("/" + re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, route))
    return sorted(set(paths))


def leaks(client: Client, urls: list[str], *, post: bool = False) -> list[str]:
    found = []
    for url in urls:
        response = client.post(url) if post else client.get(url)
        if MARKER in _body(response):
            found.append(f"{'POST' if post else 'GET'} {url} ({response.status_code})")
    return found


def test_the_planted_rows_cover_every_team_model(planted):
    labels = {m._meta.label for m in planted}
    for label in ("actions.Run", "actions.OutputChunk", "servers.Server", "audit.AuditEvent"):
        assert label in labels
    run = planted[apps.get_model("actions.Run")]
    assert run.script == MARKER  # type: ignore[attr-defined]


def test_no_admin_page_shows_team_content_to_staff(staff_client, planted):
    urls = sorted(set(admin_urls(planted)))
    assert len(urls) > 60  # every model admin's pages and the site's own
    assert leaks(staff_client, urls) == []


def test_a_leaky_admin_is_caught(staff_client, planted):
    """Prove the check can fail: show the action's script in the back office."""
    action_model = apps.get_model("actions.Action")
    model_admin = admin.site._registry[action_model]
    original = model_admin.get_list_display
    model_admin.get_list_display = lambda request: ["id", "script"]  # type: ignore[method-assign]
    try:
        found = leaks(staff_client, sorted(set(admin_urls(planted))))
    finally:
        model_admin.get_list_display = original  # type: ignore[method-assign]
    assert "GET /admin/actions/action/ (200)" in found


def test_no_team_page_or_api_path_answers_staff_without_a_grant(staff_client, planted):
    paths = team_paths(planted)
    assert len(paths) > 50
    logged_before = StaffAccess.objects.count()  # the planted row
    assert leaks(staff_client, paths) == []
    assert leaks(staff_client, paths, post=True) == []
    for path in paths:
        if not path.startswith("/api/"):
            # 405: a POST-only page refuses a GET before looking at the team.
            assert staff_client.get(path).status_code in (403, 404, 405), path
            assert staff_client.post(path).status_code in (403, 404, 405), path
    assert StaffAccess.objects.count() == logged_before


def test_under_a_grant_every_page_staff_open_is_logged(staff_client, planted):
    team = planted[Team]
    owner = _user_model().objects.get(email="owner@example.com")
    support_access.support_grant_create(
        team=team, actor=owner, scope="read", reason="ticket #1", duration=timedelta(days=1)
    )
    # The planted rows are markers, not well-formed content, so some pages fail
    # to render them; this test is about which pages staff opened being logged.
    staff_client.raise_request_exception = False
    opened = []
    for path in team_paths(planted):
        if WAITING_PATHS.search(path):
            continue
        response = staff_client.get(path)
        if path.startswith("/api/"):
            assert MARKER not in _body(response), f"the API honoured a grant: {path}"
        elif response.status_code == 200:
            opened.append(path)
    assert len(opened) > 10
    logged = set(StaffAccess.objects.values_list("path", flat=True))
    assert [path for path in opened if path not in logged] == []


# Admins that may add, change or delete something, and why it is not a
# customer's business state. Every other admin is read only.
MAY_WRITE = {
    "accounts.User": "staff flags only; profile and account state are read only",
    "auth.Group": "Pipetower's own staff groups",
    "socialaccount.SocialApp": "the operator's Google sign-in configuration",
    "support.Newsletter": "text Pipetower writes for subscribers",
    "support.Survey": "questions Pipetower writes",
    "support.Interview": "invited through interview_invite; a kept recording noted through "
    "interview_recording_keep, refused without the person's yes; never deleted",
    "privacy.DataSubjectRequest": "steps through privacy.rights_requests (start, extend, answer)",
    "privacy.PolicyVersion": "add only, through policy_version_publish; never changed or deleted",
    "api.ApiToken": "every field read only; revoking goes through api_token_revoke",
    "privacy.Subprocessor": "the public list, saved through subprocessor_add/_change/_remove",
    "privacy.LegalRequest": "recorded through legal_request_record/_update; never deleted",
}


def test_every_other_admin_is_read_only(rf):
    request = rf.get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    writable = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        if label in MAY_WRITE:
            continue
        if (
            model_admin.has_add_permission(request)
            or model_admin.has_change_permission(request, None)
            or model_admin.has_delete_permission(request, None)
        ):
            writable.append(label)
    assert writable == []
    for label in (
        "accounts.User",
        "privacy.DataSubjectRequest",
        "api.ApiToken",
        "privacy.LegalRequest",
        "privacy.PolicyVersion",
    ):
        model_admin = admin.site._registry[apps.get_model(label)]
        assert not model_admin.has_delete_permission(request, None), label


def test_no_account_admin_shows_a_secret_or_what_a_provider_sent(staff_client):
    from allauth.mfa.models import Authenticator
    from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
    from allauth.usersessions.models import UserSession

    person = UserFactory(email="person@example.com")
    authenticator = Authenticator.objects.create(user=person, type="totp", data={"secret": MARKER})
    account = SocialAccount.objects.create(
        user=person, provider="google", uid="1", extra_data={"name": MARKER}
    )
    app = SocialApp.objects.create(provider="google", name="Google", client_id="x")
    SocialToken.objects.create(app=app, account=account, token=MARKER, token_secret=MARKER)
    session = UserSession.objects.create(
        user=person, ip="192.0.2.1", session_key="k" * 32, user_agent="ua", data={"m": MARKER}
    )
    pages = [
        "/admin/mfa/authenticator/",
        f"/admin/mfa/authenticator/{authenticator.pk}/change/",
        "/admin/socialaccount/socialaccount/",
        f"/admin/socialaccount/socialaccount/{account.pk}/change/",
        "/admin/usersessions/usersession/",
        f"/admin/usersessions/usersession/{session.pk}/change/",
        "/admin/socialaccount/socialtoken/",
    ]
    assert leaks(staff_client, pages) == []
    assert staff_client.get("/admin/socialaccount/socialtoken/").status_code == 404
    assert (
        staff_client.post(
            "/admin/account/emailaddress/add/",
            {"user": person.pk, "email": "staff@evil.example", "verified": "on"},
        ).status_code
        == 403
    )

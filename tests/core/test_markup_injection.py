"""No stored string ever becomes markup (issue 9, finding 1).

Every string field of every model (listed from the models themselves, so a new
field is covered without touching this file) gets planted markup: a tag, a
`<button formaction=...>` that would post a role change, and an attribute
breakout with an event handler. Then every page of the URL configuration is
rendered, as a team owner and as staff (the back office included), and parsed:
no element may carry the planted attribute, and the planted text must show,
escaped, where the field is displayed.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
from allauth.account.models import EmailAddress, EmailConfirmation
from allauth.usersessions.models import UserSession
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from pipetower.accounts.models import SignInEvent, User
from pipetower.actions.models import (
    Action,
    ActionVersion,
    ApprovalRequest,
    OutputChunk,
    Run,
    RunTarget,
    Schedule,
    Webhook,
    WebhookDelivery,
)
from pipetower.analytics.models import ExperimentExposure, PageView
from pipetower.api.models import ApiToken
from pipetower.audit.models import AuditEvent
from pipetower.core.fields import EncryptedTextField
from pipetower.core.models import OutboxMessage, WorkerHeartbeat
from pipetower.notifications.models import NotificationDelivery, NotificationRule
from pipetower.privacy.models import (
    ConsentEvent,
    DataSubjectRequest,
    DeletionReport,
    ExportJob,
    LegalHold,
    LegalRequest,
    PolicyAcknowledgement,
    PolicyVersion,
    StaffAccess,
    Subprocessor,
    SubprocessorChange,
    SubprocessorSubscriber,
    SupportGrant,
)
from pipetower.servers.models import Server, Tag, TeamSshKey
from pipetower.support.models import (
    Correspondence,
    Interview,
    Newsletter,
    Survey,
    SurveyResponse,
)
from pipetower.teams.models import Invitation, Membership, Role, Team
from tests.factories import TeamFactory, UserFactory

MARK = "data-planted"

# Apps whose rows are machinery, not anything a person types or sees (cryptotest:
# a model of the test suite only).
SKIPPED_APPS = {"contenttypes", "sessions", "auth", "socialaccount", "cryptotest"}
# Fields that cannot hold markup without breaking what they are (each with why).
# Choice fields are skipped automatically: they only hold one of their choices.
SKIPPED_FIELDS = {
    "accounts.User.password": "a password hash, never shown",
    "account.EmailConfirmation.key": "a secret link key, never shown",
    "teams.Team.slug": "a URL part, validated as a slug",
    "teams.Invitation.token_hash": "a hash, never shown",
    "support.Interview.token_hash": "a hash, never shown",
    "api.ApiToken.token_hash": "a hash, never shown",
    "usersessions.UserSession.session_key": "the session key, never shown",
    "mfa.Authenticator.data": "allauth's own structure (secrets, public keys)",
    "core.DataKey.master_key_id": "key bookkeeping, never shown",
    "actions.Action.secret_defaults": "encrypted",
    "actions.Webhook.token": "a secret URL part, generated, never typed",
    "actions.WebhookDelivery.accepted_id": "a copy of delivery_id for the replay check",
}
# Keys inside JSON fields that name a structure, not text.
STRUCTURAL_JSON_KEYS = {"kind", "required"}
# Fields the brief names as shown somewhere: each must appear, escaped, on some page.
# (An audit event's `data` is shown only in the API's JSON and, before support access
# came, in the back office; it is still planted and must never render as markup.)
MUST_SHOW = {
    "accounts.User.name",
    "teams.Team.name",
    "actions.Action.name",
    "actions.Action.description",
    "actions.Action.script",
    "actions.Action.parameters",
    "actions.Action.default_tags",
    "actions.ActionVersion.script",
    "actions.ActionVersion.parameters",
    "actions.ActionVersion.changes",
    "actions.Run.action_name",
    "actions.ApprovalRequest.reason",
    "actions.Run.schedule_name",
    "actions.Schedule.name",
    "actions.Schedule.last_message",
    "actions.Webhook.name",
    "actions.Webhook.mapping",
    "actions.WebhookDelivery.delivery_id",
    "actions.WebhookDelivery.message",
    "notifications.NotificationRule.name",
    "notifications.NotificationRule.url",
    "notifications.NotificationDelivery.message",
    "actions.RunTarget.server_name",
    "servers.Tag.name",
    "servers.Server.name",
    "servers.Server.host",
    "servers.Server.username",
    "api.ApiToken.name",
    "audit.AuditEvent.target_label",
    "support.Correspondence.body",
    "support.Interview.topic",
    "accounts.SignInEvent.browser",
    "privacy.Subprocessor.name",
    "privacy.Subprocessor.purpose",
    "privacy.Subprocessor.location",
    "privacy.SubprocessorChange.name",
    "privacy.SubprocessorChange.summary",
    "privacy.PolicyVersion.text",
    "privacy.PolicyVersion.summary",
}


@dataclass
class Planted:
    counter: Iterator[int]
    where: dict[str, str]  # marker number → "app.Model.field"

    def payload(self, field_label: str, max_length: int | None) -> str | None:
        n = next(self.counter)
        self.where[str(n)] = field_label
        full = (
            f'<b {MARK}="{n}">p{n}</b>'
            f'<button formaction="/teams/t/members/4/role/" name="role" value="owner" {MARK}="{n}">'
            f'Start run</button>"><img src=x onerror=alert({n}) {MARK}="{n}">'
        )
        short = f"<b {MARK}={n}>"
        for text in (full, short):
            if max_length is None or len(text) <= max_length:
                return text
        return None


def _string_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    fields = []
    for field in model._meta.concrete_fields:
        label = f"{model._meta.label}.{field.name}"
        if label in SKIPPED_FIELDS or field.choices or isinstance(field, EncryptedTextField):
            continue
        if isinstance(field, (models.CharField, models.TextField, models.JSONField)):
            fields.append(field)
    return fields


def planted_models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label not in SKIPPED_APPS and _string_fields(m) and not m._meta.proxy
    ]


def _plant_json(value: Any, make: Any) -> Any:
    if isinstance(value, str):
        return make()
    if isinstance(value, list):
        return [_plant_json(v, make) for v in value] or [make()]
    if isinstance(value, dict):
        out = {
            k: (v if k in STRUCTURAL_JSON_KEYS else _plant_json(v, make)) for k, v in value.items()
        }
        return out or {"note": make()}
    return value


def plant_everywhere() -> Planted:
    planted = Planted(counter=itertools.count(1), where={})
    for model in planted_models():
        for obj in model._default_manager.all():
            changes: dict[str, Any] = {}
            for field in _string_fields(model):
                label = f"{model._meta.label}.{field.name}"
                if isinstance(field, models.JSONField):
                    current = getattr(obj, field.attname)
                    changes[field.attname] = _plant_json(
                        current, lambda label=label: planted.payload(label, None)
                    )
                    continue
                text = planted.payload(label, field.max_length)
                if text is not None:
                    changes[field.attname] = text
            model._default_manager.filter(pk=obj.pk).update(**changes)
    return planted


# --- seeding: one row of every model ---------------------------------------------


def seed(owner: User, staff: User) -> dict[str, Any]:
    now = timezone.now()
    # Scheduled for deletion: every team page carries the banner with the team's name.
    team = TeamFactory(
        name="Engines", slug="engines", deletion_scheduled_for=now + datetime.timedelta(days=14)
    )
    membership = Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    other = UserFactory(name="Grace Hopper")
    other_membership = Membership.objects.create(team=team, user=other, role=Role.ADMIN)
    invitation = Invitation.objects.create(
        team=team,
        email="new@example.com",
        token_hash="h" * 64,
        expires_at=now + datetime.timedelta(days=3),
        invited_by=owner,
    )
    tag = Tag.objects.create(team=team, name="web")
    server = Server.objects.create(
        team=team,
        name="web-1",
        host="127.0.0.1",
        username="deploy",
        last_check_error="refused",
        last_check_message="Connection refused",
        remote_hostname="web-1.local",
        remote_os="Debian",
    )
    server.tags.add(tag)
    TeamSshKey.objects.create(team=team, public_key="ssh-ed25519 AAAA pt", fingerprint="SHA256:x")
    action = Action.objects.create(
        team=team,
        name="Deploy",
        description="Ship it",
        script="echo hi",
        run_as="deploy",
        default_tags=["web"],
        parameters=[
            {
                "name": "version",
                "label": "Version",
                "kind": "string",
                "help": "Which one",
                "default": "1.0",
                "required": False,
                "choices": [],
            },
            {
                "name": "mode",
                "label": "Mode",
                "kind": "choice",
                "help": "How",
                "choices": ["fast", "slow"],
                "default": "fast",
                "required": False,
            },
        ],
    )
    action.default_servers.add(server)
    ActionVersion.objects.create(
        team=team,
        action=action,
        number=1,
        script="echo hi",
        parameters=action.parameters,
        run_as="deploy",
        timeout_seconds=60,
        concurrency=1,
        changes=["script"],
        created_by=owner,
    )
    run = Run.objects.create(
        team=team,
        action=action,
        action_name="Deploy",
        script="echo hi",
        parameters=action.parameters,
        params={"version": "1.0", "mode": "fast"},
        run_as="deploy",
        timeout_seconds=60,
        concurrency=1,
        status="succeeded",
        started_by=owner,
    )
    ApprovalRequest.objects.create(
        team=team,
        run=run,
        requested_by=owner,
        decided_by=owner,
        decision="denied",
        reason="Not during the freeze",
        decided_at=now,
        expires_at=now + datetime.timedelta(hours=24),
    )
    schedule = Schedule.objects.create(
        team=team,
        action=action,
        name="Nightly",
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        tags=["web"],
        params={"version": "1.0", "mode": "fast"},
        next_run_at=now + datetime.timedelta(hours=1),
        last_run=run,
        last_fired_at=now,
        last_outcome="refused",
        last_message="No servers",
        created_by=owner,
    )
    schedule.servers.add(server)
    webhook = Webhook.objects.create(
        team=team,
        action=action,
        name="On push",
        token="t" * 43,
        secret="s" * 43,
        tags=["web"],
        params={"mode": "fast"},
        mapping={"version": "ref"},
        created_by=owner,
    )
    webhook.servers.add(server)
    WebhookDelivery.objects.create(
        webhook=webhook, delivery_id="d-1", status=422, message="Parameter version is required."
    )
    rule = NotificationRule.objects.create(
        team=team,
        action=action,
        name="Failures",
        channel="webhook",
        url="https://hooks.example.com/ops",
        format="json",
        secret="n" * 43,
        created_by=owner,
    )
    NotificationDelivery.objects.create(
        rule=rule, run=run, event="failed", outcome="failed", message="Answered 500."
    )
    Run.objects.filter(pk=run.pk).update(
        trigger="schedule", schedule=schedule, schedule_name="Nightly"
    )
    target = RunTarget.objects.create(
        run=run, server=server, server_name="web-1", status="succeeded", error="none", worker="w1"
    )
    OutputChunk.objects.create(run_target=target, seq=1, stream="stdout", data="hello\n")
    token = ApiToken.objects.create(
        user=owner, name="laptop", prefix="ptk_abc", token_hash="t" * 64
    )
    AuditEvent.objects.create(
        team=team,
        actor=owner,
        actor_label="Ada",
        verb="server.created",
        target_type="server",
        target_id=str(server.pk),
        target_label="web-1",
        data={"name": "web-1", "changes": {"host": ["a", "b"]}},
    )
    SignInEvent.objects.create(
        user=owner,
        method="password",
        outcome="success",
        user_agent="Mozilla/5.0",
        browser="Firefox",
        os="Linux",
        country_name="France",
        city="Paris",
        region="IDF",
        reason="ok",
        detail="ok",
        second_factor="totp",
    )
    UserSession.objects.create(
        user=owner, ip="127.0.0.1", session_key="s" * 32, user_agent="Mozilla/5.0"
    )
    address = EmailAddress.objects.get(user=owner)
    EmailConfirmation.objects.create(email_address=address, key="k" * 64)
    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=now)
    OutboxMessage.objects.create(task="pipetower.core.tasks.heartbeat_task", args=[1])
    ConsentEvent.objects.create(
        user=owner, purpose="newsletter", granted=True, channel="web", wording_version="v1"
    )
    DataSubjectRequest.objects.create(
        user=owner,
        kind="correction",
        details="Fix my name",
        due_at=now,
        answer="Done",
        extended_at=now,
        extension_reason="More time",
    )
    DataSubjectRequest.objects.create(
        email="visitor@example.org", kind="objection", details="Stop it", status="open"
    )
    job = ExportJob(user=owner, status="failed", error="Disk full")
    job.file.save("export.zip", ContentFile(b"PK"), save=False)
    job.save()
    LegalHold.objects.create(user=other, reason="Court order", scope=["audit"], created_by=staff)
    DeletionReport.objects.create(categories={"accounts.User": {"deleted": 1}}, kept=[])
    Correspondence.objects.create(user=owner, email=owner.email, subject="Help", body="Hello")
    survey = Survey.objects.create(title="How are we doing?", questions="Good?\nBad?", sent_at=now)
    SurveyResponse.objects.create(survey=survey, user=other, answers=["yes", "no"])
    Newsletter.objects.create(subject="News", body="Body")
    Interview.objects.create(
        user=owner,
        topic="Schedules",
        scheduled_for=now + datetime.timedelta(days=1),
        token_hash="i" * 64,
        recording_allowed=True,
        recording_reference="rec.mp3",
        invited_by=staff,
    )
    PageView.objects.create(path="/teams/", day=now.date())
    ExperimentExposure.objects.create(experiment="exp", variant="a", day=now.date())
    grant = SupportGrant.objects.create(
        team=team,
        scope="read",
        reason="Ticket 42",
        granted_by=owner,
        expires_at=now + datetime.timedelta(days=1),
    )
    StaffAccess.objects.create(
        grant=grant,
        team=team,
        staff=staff,
        staff_label="Staff",
        kind="view",
        method="GET",
        path="/teams/engines/",
        page="teams:detail",
    )
    Subprocessor.objects.create(
        name="Mailgun", purpose="Sending email", location="EU", since=now.date()
    )
    SubprocessorChange.objects.create(kind="added", name="Mailgun", summary="Purpose: email")
    SubprocessorSubscriber.objects.create(email="follower@example.com")
    LegalRequest.objects.create(
        authority="A court",
        received_on=now.date(),
        scope="Account of a customer",
        disclosed=False,
        reason="Not binding",
        customer_notified=True,
        recorded_by=staff,
    )
    # Two versions: the older one's page and the list of earlier versions show too.
    for number in (1, 2):
        PolicyVersion.objects.create(
            number=number, text=f"Policy {number}", summary="Changed", significant=True
        )
    PolicyAcknowledgement.objects.create(user=other, version_id=2)
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(Server),
        object_id=str(server.pk),
        object_repr="web-1",
        action_flag=CHANGE,
        change_message="Changed name",
    )
    return {
        "team_slug": team.slug,
        "slug": team.slug,
        "server_id": server.pk,
        "action_id": action.pk,
        "run_id": run.pk,
        "target_id": target.pk,
        "schedule_id": schedule.pk,
        "webhook_id": webhook.pk,
        "rule_id": rule.pk,
        "membership_id": other_membership.pk,
        "member_id": other_membership.pk,
        "invitation_id": invitation.pk,
        "token_id": token.pk,
        "export_id": job.pk,
        "session_id": UserSession.objects.first().pk,  # type: ignore[union-attr]
        "user_id": owner.pk,
        "survey_id": survey.pk,
        "grant_id": grant.pk,
        "number": 1,
        "n": 1,
        "pk": 1,
        "token": "no-such-token",
        "key": "no-such-key",
        "uidb36": "1",
        "app_label": "servers",
        "content_type_id": ContentType.objects.get_for_model(Server).pk,
        "_owner_membership": membership,
    }


# --- walking the URL configuration -----------------------------------------------


ADMIN_OBJECT = {"object_id", "id"}


def _urls(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, path) of every route, parameters filled from the seeded objects."""

    def walk(patterns: list[Any], namespace: str, groups: set[str]) -> Iterator[tuple[str, str]]:
        for p in patterns:
            here = groups | set(p.pattern.regex.groupindex)
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, ns, here)
                continue
            assert isinstance(p, URLPattern)
            if not p.name:
                continue  # allauth's unnamed aliases of named routes
            kwargs = {name: values[name] for name in here - ADMIN_OBJECT}
            model_admin = getattr(p.callback, "model_admin", None)
            if here & ADMIN_OBJECT:
                # The back office's object pages: the first row of that admin's model
                # (the "view on site" redirect takes `content_type_id`: a server).
                model = model_admin.model if model_admin else Server
                first = model._default_manager.order_by("pk").first()
                if first is None:
                    continue  # a model with no rows (auth groups): nothing to show
                kwargs.update(dict.fromkeys(here & ADMIN_OBJECT, first.pk))
            name = f"{namespace}{p.name}"
            yield name, reverse(name, kwargs=kwargs)

    yield from walk(get_resolver().url_patterns, "", set())


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.injected: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == MARK or (name.startswith("on") and "alert(" in (value or "")):
                self.injected.append(f"<{tag} {name}={value!r}>")
            self.text.append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@pytest.mark.django_db
def test_planted_markup_is_never_rendered_as_markup_on_any_page(settings: Any) -> None:
    settings.ADMIN_REQUIRE_2FA = False
    # Google sign-in configured, so its pages render (unconfigured, they answer 500).
    google = dict(settings.SOCIALACCOUNT_PROVIDERS["google"])
    google["APPS"] = [{"client_id": "planted-client", "secret": "planted-secret"}]
    settings.SOCIALACCOUNT_PROVIDERS = {**settings.SOCIALACCOUNT_PROVIDERS, "google": google}
    owner = UserFactory(email="ada@example.com", name="Ada Lovelace")
    staff = UserFactory(email="staff@example.com", name="Staff", is_staff=True, is_superuser=True)
    values = seed(owner, staff)

    empty = [m._meta.label for m in planted_models() if not m._default_manager.exists()]
    assert empty == [], f"seed a row of these models so their fields are tested: {empty}"
    for label in SKIPPED_FIELDS:
        app_model, field = label.rsplit(".", 1)
        apps.get_model(app_model)._meta.get_field(field)  # the list names real fields

    planted = plant_everywhere()
    urls = list(_urls(values))
    assert len(urls) > 150  # the whole configuration was walked, the admin included

    as_owner = Client(raise_request_exception=False)
    as_staff = Client(raise_request_exception=False)
    as_owner.force_login(User.objects.get(pk=owner.pk))
    as_staff.force_login(User.objects.get(pk=staff.pk))
    injected: list[tuple[str, str]] = []
    errors: list[tuple[str, int]] = []
    shown: set[str] = set()
    for who, client in (("owner", as_owner), ("staff", as_staff)):
        for name, path in urls:
            if who == "owner" and name.startswith("admin:"):
                continue
            response = client.get(path, {"wait": "0.1"})
            if response.status_code >= 500:
                errors.append((path, response.status_code))
                continue
            body = _body(response)
            if "html" not in response.get("Content-Type", ""):
                continue
            parser = _Elements()
            parser.feed(body)
            injected += [(f"{who} {path}", element) for element in parser.injected]
            text = "".join(parser.text)
            for n, label in planted.where.items():
                if f">p{n}</b>" in text or f"{MARK}={n}>" in text:
                    shown.add(label)

    assert errors == []
    assert injected == []
    assert MUST_SHOW - shown == set(), "planted text not shown escaped anywhere"


@pytest.mark.django_db
def test_the_action_forms_own_help_text_shows_literally() -> None:
    """Escaping all help texts means a developer's `<NAME>` is text, not a tag."""
    from pipetower.actions.forms import ActionForm

    form = ActionForm(team=Team(pk=0))
    html = str(form["script"].as_field_group())
    assert "PT_PARAM_&lt;NAME&gt;" in html


@pytest.mark.django_db
def test_djangos_own_markup_in_a_help_text_still_renders(settings: Any) -> None:
    """The one help text Django writes as markup in a plain string keeps its list."""
    settings.ADMIN_REQUIRE_2FA = False
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)

    # The back office no longer sets passwords (staff answer 403 there), so the
    # form is rendered directly, with the configured renderer.
    from django.contrib.auth.forms import AdminPasswordChangeForm

    html = str(AdminPasswordChangeForm(staff).as_div())

    assert '<ul id="id_unusable_warning"' in html

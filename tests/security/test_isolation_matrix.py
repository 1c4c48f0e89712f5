"""Who may reach team A's pages and API operations: the isolation matrix.

The routes come from the URL configuration and the OpenAPI schema, so a new
route is in the matrix the moment it exists, and `test_every_route_has_a_rule`
fails until someone writes down who may use it. Every route about team A is
requested, with URL parameters filled from team A's real objects, as:

- anonymous: pages redirect to sign-in, the API answers 401;
- a member of team B (404), and staff whose support grant was revoked (403):
  none of team A's marker strings in the body;
- team A's viewer, operator, admin and owner: allowed at or above the role in
  the table below, refused (403/404) below it, and a refused write changes
  nothing about team A.

Each request runs in a savepoint that is rolled back, so one caller's write
(deleting the server, say) does not change what the next caller sees.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.matrix import ask
from tests.security.routes import api_operations, fill, page_routes, route_params
from tests.security.seed import MARKERS, Seed, seed

MEMBER_ROLES = ("viewer", "operator", "admin", "owner")
RANK = {role: rank for rank, role in enumerate(MEMBER_ROLES, 1)}
OUTSIDERS = ("team_b", "staff")
# The rule for one method of one route: the lowest team role allowed, "none"
# (the method is not supported: 405 for everyone signed in), or "self" (only the
# object's holder, team A's owner here, may use it).
Rule = str

# URL name -> (GET rule, POST rule). Empty POSTs: an allowed role may get a form
# error (400) or a refusal from the service (409); never 403/404/405.
PAGES: dict[str, tuple[Rule, Rule]] = {
    "teams:detail": ("viewer", "admin"),
    "teams:settings": ("admin", "admin"),
    # Leaving is self-service: any member may leave (the last owner gets 409).
    "teams:leave": ("viewer", "viewer"),
    # Deleting the team, and cancelling its deletion, is for owners alone.
    "teams:delete": ("owner", "owner"),
    "teams:delete_cancel": ("none", "owner"),
    "teams:members": ("viewer", "admin"),
    "teams:member_role": ("none", "admin"),
    "teams:member_remove": ("none", "admin"),
    "teams:invitation_resend": ("none", "admin"),
    "teams:invitation_revoke": ("none", "admin"),
    "audit:activity": ("viewer", "admin"),
    "audit:activity_csv": ("viewer", "admin"),
    "servers:list": ("viewer", "admin"),
    "servers:add": ("admin", "admin"),
    "servers:team_key": ("viewer", "admin"),
    "servers:key_create": ("none", "admin"),
    "servers:key_rotation_start": ("none", "admin"),
    "servers:key_rotation_finish": ("none", "admin"),
    "servers:key_rotation_cancel": ("none", "admin"),
    "servers:settings": ("none", "admin"),
    "servers:detail": ("viewer", "admin"),
    "servers:edit": ("admin", "admin"),
    "servers:delete": ("admin", "admin"),
    # GET: what the page polls while a connection test is pending.
    "servers:check": ("viewer", "operator"),
    "servers:pin": ("none", "admin"),
    "servers:repin": ("admin", "admin"),
    "servers:paste_host_key": ("admin", "admin"),
    "servers:import": ("admin", "admin"),
    "servers:tags_bulk": ("none", "admin"),
    "servers:host_keys": ("admin", "none"),
    "servers:host_keys_fetch": ("admin", "admin"),
    "servers:host_keys_pin": ("none", "admin"),
    "actions:list": ("viewer", "admin"),
    "actions:create": ("admin", "admin"),
    "actions:detail": ("viewer", "admin"),
    "actions:edit": ("admin", "admin"),
    "actions:delete": ("admin", "admin"),
    "actions:run": ("operator", "operator"),
    # An action's history is read by all; restoring a version is changing the action.
    "actions:history": ("viewer", "admin"),
    "actions:version": ("viewer", "admin"),
    "actions:version_restore": ("none", "admin"),
    # Who can run actions manages their schedules; viewers read the list.
    "actions:schedule_create": ("operator", "operator"),
    "schedules:list": ("viewer", "admin"),
    "schedules:edit": ("operator", "operator"),
    "schedules:toggle": ("none", "operator"),
    "schedules:delete": ("operator", "operator"),
    # Webhooks likewise; only those who manage them see a hook's URL.
    "actions:webhook_create": ("operator", "operator"),
    "webhooks:list": ("viewer", "admin"),
    "webhooks:detail": ("viewer", "admin"),
    "webhooks:edit": ("operator", "operator"),
    "webhooks:secret": ("none", "operator"),
    "webhooks:delete": ("operator", "operator"),
    # Notification rules: every member reads them and their delivery log; owners and
    # admins manage them (a webhook URL is shown whole only to them).
    "notifications:list": ("viewer", "admin"),
    "notifications:create": ("admin", "admin"),
    "notifications:detail": ("viewer", "admin"),
    "notifications:edit": ("admin", "admin"),
    "notifications:delete": ("admin", "admin"),
    "notifications:test": ("none", "admin"),
    "notifications:secret": ("none", "admin"),
    "runs:list": ("viewer", "admin"),
    "runs:detail": ("viewer", "admin"),
    "runs:live": ("viewer", "admin"),
    "runs:download": ("viewer", "admin"),
    "runs:cancel": ("none", "operator"),
    "runs:rerun": ("none", "operator"),
    # Every member sees what waits for approval; admins and owners decide (and the
    # service refuses the one who asked: tests/actions/test_approvals.py).
    "runs:approve": ("none", "admin"),
    "runs:deny": ("none", "admin"),
    "approvals:list": ("viewer", "admin"),
    "runs:again": ("operator", "operator"),
    "runs:chunks": ("viewer", "admin"),
    "runs:target_download": ("viewer", "admin"),
    "tokens:revoke": ("none", "self"),
    # Viewers see who was granted support access; owners and admins grant and revoke.
    "support_access:list": ("viewer", "admin"),
    "support_access:revoke": ("viewer", "admin"),  # GET leads back to the list
}

# "METHOD /path" -> (rule, JSON body that passes validation).
API: dict[str, tuple[Rule, dict[str, Any] | None]] = {
    "POST /api/v1/teams/{slug}/runs/{run_id}/again": ("operator", {}),
    "GET /api/v1/teams/{slug}": ("viewer", None),
    "PATCH /api/v1/teams/{slug}": ("admin", {"name": "Renamed"}),
    "GET /api/v1/teams/{slug}/retention": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/retention": ("admin", {"run_retention_days": 12}),
    "GET /api/v1/teams/{slug}/members": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/members/{member_id}": ("admin", {"role": "operator"}),
    "DELETE /api/v1/teams/{slug}/members/{member_id}": ("admin", None),
    "GET /api/v1/teams/{slug}/invitations": ("admin", None),
    "POST /api/v1/teams/{slug}/invitations": (
        "admin",
        {"email": "new@example.com", "role": "viewer"},
    ),
    "POST /api/v1/teams/{slug}/invitations/{invitation_id}/resend": ("admin", None),
    "DELETE /api/v1/teams/{slug}/invitations/{invitation_id}": ("admin", None),
    "GET /api/v1/teams/{slug}/audit-events": ("viewer", None),
    "GET /api/v1/teams/{slug}/servers": ("viewer", None),
    "POST /api/v1/teams/{slug}/servers": (
        "admin",
        {"name": "n", "host": "127.0.0.1", "username": "u"},
    ),
    "POST /api/v1/teams/{slug}/servers/import": (
        "admin",
        {"text": "name,address,user\nimported,127.0.0.1,u\n", "dry_run": True},
    ),
    "POST /api/v1/teams/{slug}/servers/host-keys/fetch": ("admin", {"server_ids": []}),
    "POST /api/v1/teams/{slug}/servers/host-keys/pin": ("admin", {"fingerprints": {}}),
    "POST /api/v1/teams/{slug}/servers/tags": (
        "admin",
        {"server_ids": [], "add": ["x"]},
    ),
    "GET /api/v1/teams/{slug}/servers/{server_id}": ("viewer", None),
    "GET /api/v1/teams/{slug}/servers/{server_id}/check": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/servers/{server_id}": ("admin", {"name": "renamed"}),
    "DELETE /api/v1/teams/{slug}/servers/{server_id}": ("admin", None),
    "POST /api/v1/teams/{slug}/servers/{server_id}/check": ("operator", None),
    "POST /api/v1/teams/{slug}/servers/{server_id}/host-key/pin": (
        "admin",
        {"fingerprint": "SHA256:x"},
    ),
    "POST /api/v1/teams/{slug}/servers/{server_id}/host-key/known-hosts": (
        "admin",
        {"known_hosts": "x"},
    ),
    "GET /api/v1/teams/{slug}/ssh-key": ("viewer", None),
    "POST /api/v1/teams/{slug}/ssh-key": ("admin", None),
    "GET /api/v1/teams/{slug}/actions": ("viewer", None),
    "POST /api/v1/teams/{slug}/actions": ("admin", {"name": "new", "script": "true"}),
    "GET /api/v1/teams/{slug}/actions/{action_id}": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/actions/{action_id}": ("admin", {"name": "renamed"}),
    "DELETE /api/v1/teams/{slug}/actions/{action_id}": ("admin", None),
    "POST /api/v1/teams/{slug}/actions/{action_id}/runs": ("operator", {}),
    "GET /api/v1/teams/{slug}/actions/{action_id}/versions": ("viewer", None),
    "GET /api/v1/teams/{slug}/actions/{action_id}/versions/{n}": ("viewer", None),
    "POST /api/v1/teams/{slug}/actions/{action_id}/versions/{n}/restore": ("admin", None),
    "GET /api/v1/teams/{slug}/runs": ("viewer", None),
    "GET /api/v1/teams/{slug}/runs/{run_id}": ("viewer", None),
    "GET /api/v1/teams/{slug}/runs/{run_id}/targets/{target_id}/output": ("viewer", None),
    "GET /api/v1/teams/{slug}/runs/{run_id}/changes": ("viewer", None),
    "POST /api/v1/teams/{slug}/runs/{run_id}/cancel": ("operator", None),
    "POST /api/v1/teams/{slug}/runs/{run_id}/rerun-failed": ("operator", None),
    "GET /api/v1/teams/{slug}/approvals": ("viewer", None),
    "POST /api/v1/teams/{slug}/runs/{run_id}/approve": ("admin", None),
    "POST /api/v1/teams/{slug}/runs/{run_id}/deny": ("admin", {"reason": "no"}),
    "GET /api/v1/teams/{slug}/schedules": ("viewer", None),
    "POST /api/v1/teams/{slug}/actions/{action_id}/schedules": (
        "operator",
        {"name": "other", "cron": "@daily", "server_ids": []},
    ),
    "GET /api/v1/teams/{slug}/schedules/{schedule_id}": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/schedules/{schedule_id}": ("operator", {"enabled": False}),
    "DELETE /api/v1/teams/{slug}/schedules/{schedule_id}": ("operator", None),
    "GET /api/v1/teams/{slug}/webhooks": ("viewer", None),
    "POST /api/v1/teams/{slug}/actions/{action_id}/webhooks": (
        "operator",
        {"name": "other", "server_ids": []},
    ),
    "GET /api/v1/teams/{slug}/webhooks/{webhook_id}": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/webhooks/{webhook_id}": ("operator", {"enabled": False}),
    "POST /api/v1/teams/{slug}/webhooks/{webhook_id}/secret": ("operator", None),
    "DELETE /api/v1/teams/{slug}/webhooks/{webhook_id}": ("operator", None),
    "GET /api/v1/teams/{slug}/notifications": ("viewer", None),
    "POST /api/v1/teams/{slug}/notifications": (
        "admin",
        {"name": "other", "channel": "email", "recipients": "owner"},
    ),
    "GET /api/v1/teams/{slug}/notifications/{rule_id}": ("viewer", None),
    "PATCH /api/v1/teams/{slug}/notifications/{rule_id}": ("admin", {"enabled": False}),
    "DELETE /api/v1/teams/{slug}/notifications/{rule_id}": ("admin", None),
    "POST /api/v1/teams/{slug}/notifications/{rule_id}/test": ("admin", None),
    "POST /api/v1/teams/{slug}/notifications/{rule_id}/secret": ("admin", None),
    "GET /api/v1/teams/{slug}/notifications/{rule_id}/deliveries": ("viewer", None),
    "DELETE /api/v1/tokens/{token_id}": ("self", None),
    # Your own data export: nobody else's, whatever their role.
    "GET /api/v1/me/exports/{export_id}": ("self", None),
    "GET /api/v1/me/exports/{export_id}/download": ("self", None),
}

# Routes that take no parameter naming team A or one of its objects, with the
# reason they are outside the matrix. Admin pages are covered by the support
# access tests; allauth's own pages act only on the signed-in account. The webhook
# receiver (hooks:receive) answers no session at all: its unguessable token, the
# signature and the delivery id are what admit a delivery (tests/actions/test_webhooks.py).
NOT_ABOUT_A_TEAM_OBJECT = {
    "prefixes": ("account_", "mfa_", "socialaccount_", "google_", "usersessions_", "<unnamed "),
    "pages": {
        "home", "healthz", "status", "accounts:confirmation_resend",
        "accounts:profile", "accounts:avatar_upload",
        "accounts:avatar_remove", "accounts:avatar", "accounts:security",
        "accounts:session_end", "accounts:sessions_end_others", "accounts:signin_disown",
        "teams:list", "teams:create", "teams:join", "tokens:list", "tokens:create",
        "privacy:what_we_collect", "privacy:center", "privacy:consent_change",
        "privacy:restriction_start", "privacy:restriction_lift_request",
        "privacy:restriction_lift", "privacy:requests", "privacy:unsubscribe",
        "privacy:request_file", "privacy:request_confirm",
        "privacy:export", "privacy:export_download", "privacy:deletion",
        "privacy:deletion_scheduled", "privacy:subprocessors",
        "privacy:subprocessors_confirm", "privacy:subprocessors_unsubscribe",
        "privacy:transparency", "privacy:policy", "privacy:policy_version",
        "privacy:policy_acknowledge", "support:contact", "support:survey",
        "support:interview", "support:interview_recording_withdraw",
        "analytics:cookies", "analytics:consent", "analytics:blocked", "analytics:stats",
        "hooks:receive",
    },
    "api": {
        "GET /api/v1/me", "PATCH /api/v1/me", "GET /api/v1/teams", "POST /api/v1/teams",
        "GET /api/v1/tokens", "POST /api/v1/tokens",
        "GET /api/v1/me/exports", "POST /api/v1/me/exports",  # the caller's own exports
    },
}  # fmt: skip


def _excluded_page(name: str) -> bool:
    return name in NOT_ABOUT_A_TEAM_OBJECT["pages"] or name.startswith(
        NOT_ABOUT_A_TEAM_OBJECT["prefixes"]
    )


def test_every_route_has_a_rule() -> None:
    pages = page_routes()
    missing_pages = sorted(n for n in pages if n not in PAGES and not _excluded_page(n))
    stale_pages = sorted(n for n in PAGES if n not in pages)
    operations = api_operations()
    missing_api = sorted(
        k for k in operations if k not in API and k not in NOT_ABOUT_A_TEAM_OBJECT["api"]
    )
    stale_api = sorted(k for k in API if k not in operations)
    assert not missing_pages, f"pages with no rule in the isolation matrix: {missing_pages}"
    assert not missing_api, f"API operations with no rule in the isolation matrix: {missing_api}"
    assert not stale_pages and not stale_api, (
        f"rules for routes that no longer exist: {stale_pages + stale_api}"
    )
    # A route whose parameters name a team or its objects is never excluded.
    for name, route in pages.items():
        if _excluded_page(name):
            assert "team_slug" not in route_params(route), name


def _allowed(rule: Rule, caller: str) -> bool:
    if rule == "self":
        return caller == "owner"
    return rule != "none" and RANK[caller] >= RANK[rule]


def _check(
    seed_: Seed, label: str, caller: str, method: str, url: str, rule: Rule, *, api: bool, body: Any
) -> list[str]:
    answer = ask(seed_, caller, method, url, api=api, body=body)
    where = f"{label} {method} as {caller}: {answer.status}"
    problems = []
    if caller == "anonymous":
        if api and answer.status != 401:
            problems.append(f"{where}, expected 401")
        if (
            not api
            and answer.status != 405
            and not (answer.status == 302 and answer.location.startswith("/accounts/login/"))
        ):
            problems.append(f"{where}, expected a redirect to sign-in")
    elif caller in OUTSIDERS:
        # Staff whose support grant was revoked are told so (403); nobody else learns
        # that the team exists (404).
        refused = (403, 404) if caller == "staff" else (404,)
        if answer.status not in (*refused, 405) or (answer.status == 405 and rule != "none"):
            problems.append(f"{where}, expected {' or '.join(map(str, refused))}")
        # Staff were let in once, so the refusal may name the team; nothing else.
        hidden = MARKERS[1:] if caller == "staff" else MARKERS
        leaked = [marker for marker in hidden if marker in answer.body]
        if leaked:
            problems.append(f"{where}, body shows team A's {leaked}")
    elif rule == "none":
        if answer.status != 405:
            problems.append(f"{where}, expected 405")
    elif _allowed(rule, caller):
        if answer.status in (401, 403, 404, 405) or answer.status >= 500:
            problems.append(f"{where}, expected to be allowed")
    elif answer.status not in (403, 404):
        problems.append(f"{where}, expected 403 or 404")
    if answer.changed and not (caller in MEMBER_ROLES and _allowed(rule, caller)):
        problems.append(f"{where}, and team A changed")
    return problems


CALLERS = ("anonymous", *OUTSIDERS, *MEMBER_ROLES)


@pytest.mark.django_db
def test_pages_matrix() -> None:
    seed_ = seed()
    values = seed_.url_values
    problems: list[str] = []
    cells = 0
    for name, route in sorted(page_routes().items()):
        if name not in PAGES:
            continue
        url = "/" + fill(route, values)
        for method, rule in zip(("GET", "POST"), PAGES[name], strict=True):
            for caller in CALLERS:
                problems += _check(seed_, name, caller, method, url, rule, api=False, body=None)
                cells += 1
    assert cells == len(PAGES) * 2 * len(CALLERS)
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_api_matrix() -> None:
    seed_ = seed()
    values = seed_.url_values
    problems: list[str] = []
    for key, (rule, body) in sorted(API.items()):
        method, path = key.split(" ", 1)
        for caller in CALLERS:
            problems += _check(
                seed_, key, caller, method, fill(path, values), rule, api=True, body=body
            )
    assert not problems, "\n".join(problems)

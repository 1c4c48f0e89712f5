"""The data map: every model field that can hold personal data, declared once.

Export, deletion, retention purges and the public "What we collect and why"
page are all derived from these declarations; `tests/privacy/test_datamap.py`
fails for any field that could hold personal data and is not declared.

Vocabulary follows fideslang's data categories (user.contact.email,
user.device.ip_address, user.content, system.operations, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Erasure = Literal["delete", "anonymise", "keep", "cascade"]


@dataclass(frozen=True)
class FieldDecl:
    category: str  # fideslang data category, e.g. "user.contact.email"
    purpose: str  # why Pipetower keeps it, in plain words
    legal_basis: str  # "contract", "consent", "legitimate_interest", "legal_obligation"
    retention: str  # in plain words, e.g. "while the account is active"
    export: bool = True  # included in the person's export
    erasure: Erasure = "delete"  # what deletion does with it
    secret: bool = False  # never exported (encrypted secrets), with a note saying so


@dataclass(frozen=True)
class ModelDecl:
    model: str  # "app_label.ModelName"
    subject: str | None  # ORM path from this model to the person it is about ("user",
    #                     "actor", "" for the User model itself), None for team content
    team: str | None = None  # ORM path to the owning team, for team content
    title: str = ""  # plain-words name for the public page and the export
    fields: dict[str, FieldDecl] = field(default_factory=dict)
    # Fields that look personal (by type or name) but are not, each with the reason.
    not_personal: dict[str, str] = field(default_factory=dict)
    # For rows about people with or without an account, found by address rather than
    # by a link to an account: the email field. Deletion removes, and the export
    # includes, the rows whose address matches one of the person's addresses.
    subject_email: str | None = None
    # For team content kept for a period the team chooses: the `teams.Team` field
    # holding it in days (the purge and the team settings page both read it from here).
    retention_setting: str | None = None


# Phrases used many times below.
WHILE_ACCOUNT = "while your account exists; deleted with it"
WHILE_TEAM = "while the team exists; deleted with the team"
RUN_HISTORY = (
    "for the team's run history period after the run ended (90 days unless the team's "
    "owners or admins choose otherwise), then deleted; deleted with the team in any case"
)
CONTRACT = "contract"
CONSENT = "consent"
LEGIT = "legitimate_interest"
LEGAL = "legal_obligation"


def _id(purpose: str, retention: str = WHILE_ACCOUNT, **kw: object) -> FieldDecl:
    """A link to a person's account (a foreign key to the user)."""
    return FieldDecl("user.unique_id", purpose, kw.pop("legal_basis", CONTRACT), retention, **kw)  # type: ignore[arg-type]


DATA_MAP: list[ModelDecl] = [
    # ---------------------------------------------------------------- accounts
    ModelDecl(
        model="accounts.User",
        subject="",
        title="Your account",
        fields={
            "email": FieldDecl(
                "user.contact.email",
                "Signing in, and the email Pipetower needs to send you (security alerts, "
                "service notices)",
                CONTRACT,
                WHILE_ACCOUNT,
            ),
            "name": FieldDecl(
                "user.name",
                "Shown to your team mates and in emails so they know who did what",
                CONTRACT,
                WHILE_ACCOUNT,
            ),
            "avatar": FieldDecl(
                "user.content.self_image",
                "The optional profile picture shown next to your name",
                CONSENT,
                "until you remove it or delete your account",
            ),
            "signup_ip": FieldDecl(
                "user.device.ip_address",
                "Protecting Pipetower against spam and fraudulent sign-ups",
                LEGIT,
                WHILE_ACCOUNT,
            ),
        },
    ),
    ModelDecl(
        model="accounts.SignInEvent",
        subject="user",
        title="Sign-in history",
        fields={
            "user": _id("Whose sign-in this was", erasure="cascade"),
            "ip": FieldDecl(
                "user.device.ip_address",
                "Keeping your account secure: spotting sign-ins you did not make",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "country_name": FieldDecl(
                "user.location.imprecise",
                "Showing where a sign-in came from, so you can spot one that was not you",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "country_code": FieldDecl(
                "user.location.imprecise",
                "As the country name",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "region": FieldDecl(
                "user.location.imprecise",
                "As the country name",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "city": FieldDecl(
                "user.location.imprecise",
                "As the country name",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "user_agent": FieldDecl(
                "user.device.browser",
                "Naming the device and browser of a sign-in on your security page",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "browser": FieldDecl(
                "user.device.browser",
                "As the user agent",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "os": FieldDecl(
                "user.device.browser",
                "As the user agent",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    # allauth: email addresses, confirmations, two-factor, Google sign-in, sessions
    ModelDecl(
        model="account.EmailAddress",
        subject="user",
        title="Your email addresses",
        fields={
            "user": _id("Whose address this is", erasure="cascade"),
            "email": FieldDecl(
                "user.contact.email",
                "Signing in and receiving the email Pipetower needs to send",
                CONTRACT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="account.EmailConfirmation",
        subject="email_address__user",
        title="Email confirmations",
        fields={
            "email_address": _id(
                "Which address a confirmation link proves",
                "until confirmed or expired; deleted with the account",
                export=False,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="mfa.Authenticator",
        subject="user",
        title="Two-factor authentication",
        fields={
            "user": _id("Whose second factor this is", erasure="cascade"),
            "data": FieldDecl(
                "user.authorization.credentials",
                "Checking your second factor when you sign in",
                CONTRACT,
                "until you remove the factor or delete your account",
                export=False,
                erasure="cascade",
                secret=True,
            ),
        },
    ),
    ModelDecl(
        model="socialaccount.SocialAccount",
        subject="user",
        title="Connected Google account",
        fields={
            "user": _id("Whose connection this is", erasure="cascade"),
            "extra_data": FieldDecl(
                "user.account",
                "Signing in with Google, as you asked",
                CONSENT,
                "until you disconnect Google or delete your account",
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="socialaccount.SocialToken",
        subject="account__user",
        title="Google sign-in tokens",
        fields={
            "token": FieldDecl(
                "user.authorization.credentials",
                "Signing in with Google",
                CONSENT,
                "until you disconnect Google or delete your account",
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "token_secret": FieldDecl(
                "user.authorization.credentials",
                "Signing in with Google",
                CONSENT,
                "until you disconnect Google or delete your account",
                export=False,
                erasure="cascade",
                secret=True,
            ),
        },
    ),
    ModelDecl(
        model="socialaccount.SocialApp",
        subject=None,
        title="Sign-in provider settings",
        not_personal={
            "name": "the name of Pipetower's Google sign-in app, not of a person",
            "settings": "provider configuration set by the operator",
        },
    ),
    ModelDecl(
        model="usersessions.UserSession",
        subject="user",
        title="Your sessions",
        fields={
            "user": _id("Whose session this is", erasure="cascade"),
            "ip": FieldDecl(
                "user.device.ip_address",
                "Listing your signed-in devices so you can end the ones you do not know",
                LEGIT,
                "until the session ends; deleted with the account",
                erasure="cascade",
            ),
            "user_agent": FieldDecl(
                "user.device.browser",
                "Naming the device of each session",
                LEGIT,
                "until the session ends; deleted with the account",
                erasure="cascade",
            ),
            "data": FieldDecl(
                "system.operations",
                "Technical details of the session",
                LEGIT,
                "until the session ends; deleted with the account",
                export=False,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="sessions.Session",
        subject=None,  # the person is inside the signed data, not an ORM path
        title="Session cookies",
        fields={
            "session_data": FieldDecl(
                "user.unique_id",
                "Keeping you signed in between pages",
                CONTRACT,
                "until you sign out or the session expires; ended when the account is deleted",
                export=False,
                erasure="delete",
            ),
        },
    ),
    ModelDecl(
        model="admin.LogEntry",
        subject="user",
        title="Staff change log",
        fields={
            "user": _id(
                "Which staff member changed something in the back office",
                "while the staff account exists",
                legal_basis=LEGIT,
                export=False,
                erasure="cascade",
            ),
            "object_id": FieldDecl(
                "system.operations",
                "Which record a staff member changed",
                LEGIT,
                "while the staff account exists",
                export=False,
                erasure="cascade",
            ),
            "object_repr": FieldDecl(
                "user.content",
                "The name of the changed record, which can be a person's name or email",
                LEGIT,
                "while the staff account exists",
                export=False,
                erasure="cascade",
            ),
            "change_message": FieldDecl(
                "system.operations",
                "What a staff member changed",
                LEGIT,
                "while the staff account exists",
                export=False,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="auth.Permission",
        subject=None,
        title="Permissions",
        not_personal={"name": "the name of a permission"},
    ),
    ModelDecl(
        model="auth.Group",
        subject=None,
        title="Staff groups",
        not_personal={"name": "the name of a staff group"},
    ),
    ModelDecl(
        model="core.DataKey",
        subject=None,
        title="Encryption keys",
        not_personal={"wrapped": "an encryption key wrapped by a master key, no personal data"},
    ),
    ModelDecl(
        model="core.OutboxMessage",
        subject=None,
        title="Tasks waiting to be sent to a worker",
        not_personal={
            "args": "row ids of the work to do (a run, an invitation), no personal data",
            "secret_args": "an invitation's one-time token, encrypted; deleted a day after use",
            "options": "how the task is sent (a time limit in seconds), no personal data",
        },
    ),
    # ----------------------------------------------------------------- teams
    ModelDecl(
        model="teams.Team",
        subject=None,
        team="",
        title="Teams",
        fields={
            "name": FieldDecl(
                "user.content",
                "Naming the team; it can be a company's or a person's name",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "created_by": _id("Who created the team", WHILE_TEAM, erasure="anonymise"),
            "deletion_requested_by": _id(
                "Which owner asked to delete the team, shown to its members until it is deleted",
                WHILE_TEAM,
                erasure="anonymise",
            ),
        },
        not_personal={"slug": "an address made from the team name for links"},
    ),
    ModelDecl(
        model="teams.Membership",
        subject="user",
        team="team",
        title="Team memberships",
        fields={"user": _id("Which teams you belong to and your role", erasure="cascade")},
    ),
    ModelDecl(
        model="teams.Invitation",
        subject="invited_by",
        team="team",
        title="Team invitations",
        fields={
            "email": FieldDecl(
                "user.contact.email",
                "Sending an invitation to join a team, as a team admin asked",
                CONTRACT,
                "until the invitation is accepted, revoked or expires; deleted with the team",
                erasure="cascade",
            ),
            "invited_by": _id("Who sent the invitation", WHILE_TEAM, erasure="anonymise"),
            "accepted_by": _id("Who accepted the invitation", WHILE_TEAM, erasure="anonymise"),
        },
    ),
    # ----------------------------------------------------------------- audit
    ModelDecl(
        model="audit.AuditEvent",
        subject="actor",
        team="team",
        title="Activity log",
        fields={
            "actor": _id(
                "Showing a team who did what", WHILE_TEAM, legal_basis=LEGIT, erasure="anonymise"
            ),
            "actor_label": FieldDecl(
                "user.contact.email",
                "The email of who did it, readable after they left",
                LEGIT,
                WHILE_TEAM,
                erasure="anonymise",
            ),
            "ip": FieldDecl(
                "user.device.ip_address",
                "Where a change came from, for security investigations",
                LEGIT,
                WHILE_TEAM,
                erasure="anonymise",
            ),
            "data": FieldDecl(
                "system.operations",
                "Details of the change, which can include an invited email address",
                LEGIT,
                WHILE_TEAM,
                erasure="anonymise",
            ),
        },
    ),
    # ------------------------------------------------------------------- api
    ModelDecl(
        model="api.ApiToken",
        subject="user",
        title="API tokens",
        fields={
            "user": _id("Whose token this is", erasure="cascade"),
            "name": FieldDecl(
                "user.content",
                "The name you gave the token",
                CONTRACT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "last_used_ip": FieldDecl(
                "user.device.ip_address",
                "Showing where a token was last used, to spot misuse",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    # --------------------------------------------------------------- servers
    ModelDecl(
        model="servers.TeamSshKey",
        subject=None,
        team="team",
        title="Team SSH keys",
        fields={
            "private_key": FieldDecl(
                "user.authorization.credentials",
                "Connecting to your servers",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "created_by": _id("Who created the key", WHILE_TEAM, erasure="anonymise"),
        },
        not_personal={"public_key": "the public half of a machine key"},
    ),
    ModelDecl(
        model="servers.Tag",
        subject=None,
        team="team",
        title="Server tags",
        not_personal={"name": "a label for a group of servers"},
    ),
    ModelDecl(
        model="servers.Server",
        subject=None,
        team="team",
        title="Servers",
        fields={
            "name": FieldDecl(
                "user.content", "Naming your server", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "private_key": FieldDecl(
                "user.authorization.credentials",
                "Connecting to this server",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "password": FieldDecl(
                "user.authorization.credentials",
                "Connecting to this server",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "last_check_message": FieldDecl(
                "system.operations",
                "Explaining why the last connection check failed",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "host_key_pinned_by": _id("Who trusted the host key", WHILE_TEAM, erasure="anonymise"),
            "check_requested_by": _id(
                "Who asked for the connection test in progress", WHILE_TEAM, erasure="anonymise"
            ),
            "created_by": _id("Who added the server", WHILE_TEAM, erasure="anonymise"),
        },
        not_personal={
            "host_keys": "public keys of the server itself",
            "offered_host_key": "a public key the server offered",
        },
    ),
    # --------------------------------------------------------------- actions
    ModelDecl(
        model="actions.Action",
        subject=None,
        team="team",
        title="Actions",
        fields={
            "name": FieldDecl(
                "user.content", "Naming the action", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "description": FieldDecl(
                "user.content", "Describing the action", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "script": FieldDecl(
                "user.content", "What the action runs", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "parameters": FieldDecl(
                "user.content", "The action's parameters", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "default_tags": FieldDecl(
                "user.content", "Default targets", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "secret_defaults": FieldDecl(
                "user.authorization.credentials",
                "Secret parameter values the action passes to the script",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "created_by": _id("Who created the action", WHILE_TEAM, erasure="anonymise"),
        },
    ),
    ModelDecl(
        model="actions.ActionVersion",
        subject=None,
        team="team",
        title="Action versions",
        fields={
            "script": FieldDecl(
                "user.content",
                "The action's history: the script as it was saved",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "parameters": FieldDecl(
                "user.content",
                "The action's history: its parameters as they were saved",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "secret_defaults": FieldDecl(
                "user.authorization.credentials",
                "Secret parameter values of an earlier version, kept so it can be restored",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "changes": FieldDecl(
                "system.operations",
                "Which parts of the action a version changed",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "created_by": _id("Who saved the version", WHILE_TEAM, erasure="anonymise"),
        },
    ),
    ModelDecl(
        model="actions.Run",
        subject="started_by",
        team="team",
        title="Runs",
        retention_setting="run_retention_days",
        fields={
            "started_by": _id("Who started the run", RUN_HISTORY, erasure="anonymise"),
            "cancelled_by": _id("Who cancelled the run", RUN_HISTORY, erasure="anonymise"),
            "action_name": FieldDecl(
                "user.content",
                "The action's name at the time",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
            "script": FieldDecl(
                "user.content", "The script that ran", CONTRACT, RUN_HISTORY, erasure="cascade"
            ),
            "parameters": FieldDecl(
                "user.content",
                "The parameters of the run",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
            "params": FieldDecl(
                "user.content",
                "The values given to the run",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
            "secret_params": FieldDecl(
                "user.authorization.credentials",
                "Secret values given to the run",
                CONTRACT,
                RUN_HISTORY,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "schedule_name": FieldDecl(
                "user.content",
                "The name of the schedule that started the run",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
            "webhook_name": FieldDecl(
                "user.content",
                "The name of the webhook that started the run",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="actions.ApprovalRequest",
        subject="requested_by",
        team="team",
        title="Run approvals",
        fields={
            "requested_by": _id(
                "Who asked for the run that waited for approval", RUN_HISTORY, erasure="anonymise"
            ),
            "decided_by": _id("Who approved or denied the run", RUN_HISTORY, erasure="anonymise"),
            "reason": FieldDecl(
                "user.content",
                "Why the run was denied, as the person who denied it wrote it",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="actions.Webhook",
        subject=None,
        team="team",
        title="Webhooks",
        fields={
            "name": FieldDecl(
                "user.content", "Naming the webhook", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "secret": FieldDecl(
                "user.authorization.credentials",
                "Checking that a delivery was signed by whoever holds the webhook's secret",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "tags": FieldDecl(
                "user.content",
                "The tags the webhook's runs go to",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "params": FieldDecl(
                "user.content",
                "The fixed values the webhook's runs are given",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "secret_params": FieldDecl(
                "user.authorization.credentials",
                "Secret fixed values the webhook's runs are given",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "mapping": FieldDecl(
                "user.content",
                "Which fields of a delivery give which parameter",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "created_by": _id("Who created the webhook", WHILE_TEAM, erasure="anonymise"),
        },
    ),
    ModelDecl(
        model="actions.WebhookDelivery",
        subject=None,
        team="webhook__team",
        title="Webhook deliveries",
        fields={
            "message": FieldDecl(
                "system.operations",
                "Why a delivery to a webhook was refused (never the body itself)",
                CONTRACT,
                "for the replay window (24 hours by default), then deleted",
                # Sent by another system, about no person: shown on the webhook's page only.
                export=False,
                erasure="cascade",
            ),
        },
    ),
    # ----------------------------------------------------------- notifications
    ModelDecl(
        model="notifications.NotificationRule",
        subject=None,
        team="team",
        title="Notification rules",
        fields={
            "name": FieldDecl(
                "user.content",
                "Naming the notification rule",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "url": FieldDecl(
                "user.content",
                "Where the rule's webhook notifications are sent (shown whole only to the "
                "team's owners and admins: such URLs are often credentials)",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "secret": FieldDecl(
                "user.authorization.credentials",
                "Signing the rule's webhook notifications, so receivers can check them",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "created_by": _id(
                "Who made the rule (an email rule may mail only them)",
                WHILE_TEAM,
                erasure="anonymise",
            ),
        },
    ),
    ModelDecl(
        model="notifications.NotificationDelivery",
        subject=None,
        team="rule__team",
        title="Notification deliveries",
        fields={
            "message": FieldDecl(
                "system.operations",
                "What happened to one notification (a receiver's answer, how many members "
                "were mailed; never an address or a body)",
                CONTRACT,
                "30 days (PIPETOWER_NOTIFY_LOG_DAYS), then deleted; deleted with the rule",
                export=False,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="actions.Schedule",
        subject=None,
        team="team",
        title="Schedules",
        fields={
            "name": FieldDecl(
                "user.content", "Naming the schedule", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "cron": FieldDecl(
                "user.content", "When the schedule runs", CONTRACT, WHILE_TEAM, erasure="cascade"
            ),
            "timezone": FieldDecl(
                "user.content",
                "The time zone the schedule's times are in",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "tags": FieldDecl(
                "user.content",
                "The tags the schedule runs on",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "params": FieldDecl(
                "user.content",
                "The values the schedule's runs are given",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "secret_params": FieldDecl(
                "user.authorization.credentials",
                "Secret values the schedule's runs are given",
                CONTRACT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
                secret=True,
            ),
            "last_message": FieldDecl(
                "system.operations",
                "Why the schedule's last time was skipped, missed or not started",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
            "created_by": _id("Who created the schedule", WHILE_TEAM, erasure="anonymise"),
        },
    ),
    ModelDecl(
        model="actions.RunTarget",
        subject=None,
        team="run__team",
        title="Run results per server",
        retention_setting="run_retention_days",
        fields={
            "server_name": FieldDecl(
                "user.content",
                "The server's name at the time",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
            "error": FieldDecl(
                "user.content",
                "Why a server's run failed",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="actions.OutputChunk",
        subject=None,
        team="run_target__run__team",
        title="Run output",
        retention_setting="run_retention_days",
        fields={
            "data": FieldDecl(
                "user.content",
                "What your script printed; it can contain anything",
                CONTRACT,
                RUN_HISTORY,
                erasure="cascade",
            ),
        },
    ),
    # --------------------------------------------------------------- privacy
    ModelDecl(
        model="privacy.ConsentEvent",
        subject="user",
        title="Your consent choices",
        fields={
            "user": _id("Whose choice this is", legal_basis=LEGAL, erasure="cascade"),
            "anonymous_id": FieldDecl(
                "user.unique_id",
                "Remembering the cookie choice of a visitor who is not signed in",
                LEGAL,
                "as long as the cookie lives, at most 13 months",
            ),
        },
    ),
    ModelDecl(
        model="privacy.ProcessingRestriction",
        subject="user",
        title="Restrictions of processing",
        fields={"user": _id("Who asked to limit processing", legal_basis=LEGAL, erasure="cascade")},
    ),
    ModelDecl(
        model="privacy.DataSubjectRequest",
        subject="user",
        title="Your privacy requests",
        fields={
            "user": _id("Who made the request", legal_basis=LEGAL, erasure="cascade"),
            "details": FieldDecl(
                "user.content",
                "What you asked us, so we can answer it",
                LEGAL,
                "while your account exists; deleted with it",
                erasure="cascade",
            ),
            "answer": FieldDecl(
                "user.content",
                "Our answer to your request",
                LEGAL,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "email": FieldDecl(
                "user.contact.email",
                "Answering a request from someone without an account, at the address they "
                "gave and confirmed with a code",
                LEGAL,
                "deleted after 2 days when never confirmed; otherwise kept as the record of "
                "the request",
                erasure="cascade",
            ),
            "extension_reason": FieldDecl(
                "user.content",
                "Telling you why we needed more time to answer",
                LEGAL,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
        not_personal={
            "code_hash": "a keyed hash of the emailed confirmation code, erased on confirmation",
        },
    ),
    ModelDecl(
        model="privacy.ExportJob",
        subject="user",
        title="Your data exports",
        fields={
            "user": _id("Who asked for the export", erasure="cascade"),
            "file": FieldDecl(
                "user.content",
                "The copy of your data you asked for",
                LEGAL,
                "7 days after it is ready, then deleted",
                export=False,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="privacy.AccountDeletion",
        subject="user",
        title="Account deletion requests",
        fields={
            "user": _id(
                "Whose account is to be deleted",
                "until the deletion is done, then cleared",
                legal_basis=LEGAL,
                erasure="anonymise",
            ),
        },
    ),
    ModelDecl(
        model="privacy.LegalHold",
        subject="user",
        title="Legal holds",
        fields={
            "user": _id(
                "Whose records the law requires us to keep",
                "until the hold is lifted or expires",
                legal_basis=LEGAL,
                export=False,
                erasure="keep",
            ),
            "scope": FieldDecl(
                "system.operations",
                "Which kinds of records the hold keeps",
                LEGAL,
                "until the hold is lifted or expires",
                export=False,
                erasure="keep",
            ),
            "created_by": _id(
                "Which staff member placed the hold",
                "until the hold is lifted or expires",
                legal_basis=LEGAL,
                export=False,
                erasure="anonymise",
            ),
        },
    ),
    ModelDecl(
        model="privacy.PolicyVersion",
        subject=None,
        title="Privacy policy versions",
        fields={
            "published_by": _id(
                "Which staff member published the version",
                "as long as the version is kept; cleared when that account is deleted",
                legal_basis=LEGIT,
                export=False,
                erasure="anonymise",
            ),
        },
        not_personal={
            "text": "the policy Pipetower wrote, published for everyone",
            "summary": "what changed, written by Pipetower for everyone",
        },
    ),
    ModelDecl(
        model="privacy.PolicyNotice",
        subject="user",
        title="Privacy policy change emails sent to you",
        fields={
            "user": _id("Who the announcement of a significant change went to", erasure="cascade"),
            "version": FieldDecl(
                "system.operations",
                "Which policy version the email announced",
                CONTRACT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "sent_at": FieldDecl(
                "system.operations",
                "When we emailed you, so nobody is emailed twice",
                CONTRACT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="privacy.PolicyAcknowledgement",
        subject="user",
        title="Privacy policy changes you acknowledged",
        fields={
            "user": _id(
                "Who acknowledged a significant change", legal_basis=LEGIT, erasure="cascade"
            ),
            "version": FieldDecl(
                "system.operations",
                "Which policy version you acknowledged, so the banner stops showing",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
            "created_at": FieldDecl(
                "system.operations",
                "When you acknowledged it",
                LEGIT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="privacy.DeletionReport",
        subject=None,
        title="Deletion reports",
        not_personal={
            "categories": "counts per kind of record, with nothing that names the person",
            "kept": "counts and reasons of kept records, with nothing that names the person",
        },
    ),
    ModelDecl(
        model="privacy.SupportGrant",
        subject="granted_by",
        team="team",
        title="Support access granted to Pipetower staff",
        fields={
            "granted_by": _id(
                "Showing the team who let Pipetower staff in", WHILE_TEAM, erasure="anonymise"
            ),
            "revoked_by": _id(
                "Showing the team who ended Pipetower staff's access",
                WHILE_TEAM,
                erasure="anonymise",
            ),
            "reason": FieldDecl(
                "user.content",
                "Telling staff, and the team later, why access was granted",
                CONTRACT,
                WHILE_TEAM,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="privacy.StaffAccess",
        subject="staff",
        team="team",
        title="Pages Pipetower staff opened in a team under support access",
        fields={
            "staff": _id(
                "Showing the team which staff member opened what",
                WHILE_TEAM,
                legal_basis=LEGIT,
                export=False,
                erasure="anonymise",
            ),
            "staff_label": FieldDecl(
                "user.contact.email",
                "The staff member's address at the time, so the team's record stays readable",
                LEGIT,
                WHILE_TEAM,
                export=False,
                erasure="anonymise",
            ),
            "path": FieldDecl(
                "system.operations",
                "Which page of the team staff opened or changed",
                LEGIT,
                WHILE_TEAM,
                export=False,
                erasure="cascade",
            ),
        },
    ),
    # --------------------------------------------------------------- support
    ModelDecl(
        model="support.Correspondence",
        subject="user",
        title="Messages you sent us",
        fields={
            "user": _id("Who wrote, when signed in", legal_basis=LEGIT, erasure="anonymise"),
            "email": FieldDecl(
                "user.contact.email",
                "Answering you, and finding earlier messages when you write again",
                LEGIT,
                "kept so we can refer to past messages; deleted on request",
            ),
            "body": FieldDecl(
                "user.content",
                "What you wrote to us",
                LEGIT,
                "kept so we can refer to past messages; deleted on request",
            ),
        },
    ),
    ModelDecl(
        model="support.Survey",
        subject=None,
        title="Surveys",
        not_personal={"questions": "questions Pipetower wrote"},
    ),
    ModelDecl(
        model="support.SurveyResponse",
        subject="user",
        title="Your survey answers",
        fields={
            "user": _id("Who answered", legal_basis=CONSENT, erasure="cascade"),
            "answers": FieldDecl(
                "user.content",
                "Improving Pipetower from what you told us",
                CONSENT,
                WHILE_ACCOUNT,
                erasure="cascade",
            ),
        },
    ),
    ModelDecl(
        model="support.Interview",
        subject="user",
        title="Interviews and their recording",
        fields={
            "user": _id("Who was invited to the interview", legal_basis=CONSENT),
            "topic": FieldDecl(
                "user.content",
                "What the interview you were invited to is about",
                CONSENT,
                "while your account exists; deleted with it",
            ),
            "recording_reference": FieldDecl(
                "user.content",
                "Where the recording of the interview is kept, only after you allowed it "
                "for that interview",
                CONSENT,
                "until you withdraw the permission or delete your account",
            ),
            "invited_by": _id(
                "Which staff member invited you",
                "while the staff account exists",
                legal_basis=LEGIT,
                export=False,
                erasure="anonymise",
            ),
        },
    ),
    ModelDecl(
        model="support.Newsletter",
        subject=None,
        title="Newsletters",
        not_personal={"body": "text Pipetower wrote for everyone who subscribed"},
    ),
    # ----------------------------------------------------- public registers
    ModelDecl(
        model="privacy.Subprocessor",
        subject=None,
        title="Subprocessors",
        not_personal={"name": "the name of a company that processes data for Pipetower"},
    ),
    ModelDecl(
        model="privacy.SubprocessorChange",
        subject=None,
        title="Changes to the subprocessor list",
        not_personal={
            "name": "the name of a company that processes data for Pipetower",
            "summary": "what changed in the public list, written by Pipetower",
        },
    ),
    ModelDecl(
        model="privacy.SubprocessorSubscriber",
        subject=None,
        subject_email="email",
        title="News of our subprocessors",
        fields={
            "email": FieldDecl(
                "user.contact.email",
                "Telling you when the list of subprocessors changes, as you asked and confirmed",
                CONSENT,
                "until you unsubscribe; deleted with your account when it is one of its addresses",
            ),
        },
    ),
    ModelDecl(
        model="privacy.LegalRequest",
        subject=None,
        title="Government and legal requests",
        fields={
            "scope": FieldDecl(
                "user.content",
                "Recording what an authority asked for, which can name a customer",
                LEGAL,
                "kept as the record of the request; only yearly counts are published",
                export=False,
                erasure="keep",
            ),
            "reason": FieldDecl(
                "user.content",
                "Recording why data was or was not disclosed",
                LEGAL,
                "kept as the record of the request; only yearly counts are published",
                export=False,
                erasure="keep",
            ),
            "recorded_by": _id(
                "Which staff member recorded the request",
                "while the staff account exists",
                legal_basis=LEGAL,
                export=False,
                erasure="anonymise",
            ),
        },
    ),
]

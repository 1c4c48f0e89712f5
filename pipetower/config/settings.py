"""Pipetower settings: environment variables with a runnable default.

The README's configuration table lists every variable read here.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

import dj_database_url
from django.utils.csp import CSP
from kombu import Queue

from pipetower.analytics.scripts import parse_third_party_scripts
from pipetower.config.env import (
    ConfigurationError,
    data_dir,
    env_bool,
    env_int,
    env_list,
    env_str,
    generated_secrets,
)
from pipetower.core import netguard as _netguard

ENVIRONMENT = env_str("PIPETOWER_ENV", "development").lower()
if ENVIRONMENT not in {"development", "production"}:
    raise ConfigurationError(
        f"PIPETOWER_ENV must be 'development' or 'production', not {ENVIRONMENT!r}."
    )
PRODUCTION = ENVIRONMENT == "production"

DATA_DIR = data_dir()
PORT = env_int("PIPETOWER_PORT", 8000)
BASE_URL = env_str("PIPETOWER_BASE_URL", f"http://localhost:{PORT}").rstrip("/")
# Named in every denial and extension of a privacy request: where to complain (for
# example the operator's supervisory authority and its address). Empty: the general
# right to complain where the person lives or works is named alone.
PRIVACY_COMPLAINT_ROUTE = env_str("PIPETOWER_PRIVACY_COMPLAINT_ROUTE", "")


def _rate_setting(name: str, value: str) -> str:
    from pipetower.core.ratelimit import Rate

    try:
        Rate.parse(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a rate such as 600/m (per minute), 100/s or 5000/h, not {value!r}."
        ) from None
    return value


# --- secrets -----------------------------------------------------------------
_generated: dict[str, str] = {}
if PRODUCTION:
    _missing = [n for n in ("SECRET_KEY", "PIPETOWER_MASTER_KEYS") if not env_str(n)]
    if _missing:
        raise ConfigurationError(
            "Production mode needs these secrets in the environment: "
            + ", ".join(_missing)
            + ". Generate master keys with `pipetower keygen`."
        )
else:
    _generated = generated_secrets(DATA_DIR)

SECRET_KEY = env_str("SECRET_KEY") or _generated["SECRET_KEY"]
MASTER_KEYS = env_list("PIPETOWER_MASTER_KEYS") or [
    key for key in _generated.get("PIPETOWER_MASTER_KEYS", "").split(",") if key
]

DEBUG = env_bool("PIPETOWER_DEBUG", False)
ALLOWED_HOSTS = env_list("PIPETOWER_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("PIPETOWER_CSRF_TRUSTED_ORIGINS", BASE_URL)

# --- applications ------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    # For its bundled API docs UI (static files), so the docs page needs no CDN.
    "ninja",
    # Before allauth, so that Pipetower's allauth template overrides win.
    "pipetower.accounts",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.usersessions",
    "pipetower.core",
    "pipetower.teams",
    "pipetower.audit",
    "pipetower.api",
    "pipetower.servers",
    "pipetower.actions",
    "pipetower.notifications",
    "pipetower.privacy",
    "pipetower.support",
    "pipetower.analytics",
]

MIDDLEWARE = [
    "pipetower.core.security.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # ETag from the body on every GET, 304 for a matching If-None-Match: a list or
    # run that has not changed is not sent again, and a change always shows.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NUL characters refused before anything reads the database (pipetower/core/query.py).
    "pipetower.core.query.NulRefusalMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # One address for pages and emailed links (PIPETOWER_BASE_URL, pipetower/core/links.py).
    "pipetower.core.links.LoopbackAliasRedirectMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # allauth's session tracking, written at most once a minute per session (core/middleware.py).
    "pipetower.core.middleware.UserSessionsMiddleware",
    "pipetower.core.security.AdminGuardMiddleware",
    "pipetower.teams.middleware.CurrentTeamMiddleware",
    # Consented page counts, the A/B cookie and the analytics script's CSP (docs/cookies.md).
    "pipetower.analytics.middleware.CookieConsentMiddleware",
]

ROOT_URLCONF = "pipetower.config.urls"
WSGI_APPLICATION = "pipetower.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pipetower.core.context_processors.pipetower",
            ],
        },
    },
]
# Every form escapes its help texts (some are typed by people): pipetower/core/forms.py.
FORM_RENDERER = "pipetower.core.forms.FormRenderer"

# --- database ----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 10}
        _db["CONN_MAX_AGE"] = 0
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "pipetower.sqlite3"),
            # Kept open between requests: opening one (and its PRAGMAs) and closing
            # it (a WAL checkpoint) cost more CPU than a list page's queries.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=20000;"
                    "PRAGMA foreign_keys=ON;"
                    # Deleted rows are overwritten, not left on free pages (erasure).
                    "PRAGMA secure_delete=ON;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache -------------------------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL.startswith(("redis://", "rediss://")):
    # Answers "not cached" instead of failing while Redis is down (pipetower/core/cache.py).
    CACHES = {
        "default": {
            "BACKEND": "pipetower.core.cache.FailOpenRedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- authentication ----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "pipetower.accounts.validators.StrengthValidator", "OPTIONS": {"min_score": 3}},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

SIGNUP_MODE = env_str("PIPETOWER_SIGNUP", "open").lower()
if SIGNUP_MODE not in {"open", "invite", "closed"}:
    raise ConfigurationError(
        f"PIPETOWER_SIGNUP must be open, invite or closed, not {SIGNUP_MODE!r}."
    )

ACCOUNT_ADAPTER = "pipetower.accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "pipetower.accounts.adapters.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "pipetower.accounts.forms.SignupExtraForm"
ACCOUNT_FORMS = {
    "login": "pipetower.accounts.login_form.LoginForm",
    # Hashes the password for a taken address too, so timing tells nothing (docs/security.md).
    "signup": "pipetower.accounts.signup_form.SignupForm",
}
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Pipetower] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# Rate limits and lockout (docs/security.md). "ip" counts per client address,
# "key" per account (the address typed in, or the account in the two-factor step).
# A limit reached answers 429 with Retry-After (pipetower.core.security).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    # Failed sign-ins and failed two-factor codes: 5 per account in 5 minutes
    # locks that account's sign-in for the rest of the window.
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "confirm_email": "1/3m/key",
}
# --- two-factor authentication (allauth.mfa; docs/security.md) ---------------
MFA_ADAPTER = "pipetower.accounts.mfa.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "Pipetower"
MFA_RECOVERY_CODES_SHOW_ONCE = True
MFA_PASSKEY_LOGIN_ENABLED = env_bool("PIPETOWER_PASSKEY_LOGIN", True)
# Browsers offer WebAuthn only on HTTPS origins and on http://localhost.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION
MFA_RATE_LIMITS = {"webauthn_login": "10/m/ip"}
# Staff must have two-factor authentication to use the admin (default: in production).
ADMIN_REQUIRE_2FA = env_bool("PIPETOWER_ADMIN_REQUIRE_2FA", PRODUCTION)
# Google sign-in (docs/security.md): an existing account is signed in or linked
# only through an email address verified on both sides; no OAuth tokens kept.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {
    "google": {
        # Pipetower's subclass always checks the ID token's signature.
        "provider_class": "pipetower.accounts.google.provider.GoogleProvider",
        "SCOPE": ["openid", "profile", "email"],
        "OAUTH_PKCE_ENABLED": True,
    }
}
if env_str("GOOGLE_CLIENT_ID"):
    SOCIALACCOUNT_PROVIDERS["google"]["APPS"] = [
        {
            "client_id": env_str("GOOGLE_CLIENT_ID"),
            "secret": env_str("GOOGLE_CLIENT_SECRET"),
        }
    ]
USERSESSIONS_TRACK_ACTIVITY = True

# --- email -------------------------------------------------------------------
EMAIL_MODE = env_str("PIPETOWER_EMAIL", "console").lower()
DEFAULT_FROM_EMAIL = env_str("PIPETOWER_FROM_EMAIL", "Pipetower <pipetower@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MAIL_DIR = DATA_DIR / "mail"
# Saved mail older than this is deleted by `pipetower privacy purge` (the scheduler).
MAIL_RETENTION_DAYS = env_int("PIPETOWER_MAIL_RETENTION_DAYS", 30)
if EMAIL_MODE == "console":
    _mailer: dict[str, object] = {
        "BACKEND": "pipetower.core.mail.ConsoleAndFileBackend",
        "OPTIONS": {"file_path": str(MAIL_DIR)},
    }
elif EMAIL_MODE == "smtp":
    _mailer = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env_str("EMAIL_HOST", "localhost"),
            "port": env_int("EMAIL_PORT", 25),
            "username": env_str("EMAIL_HOST_USER"),
            "password": env_str("EMAIL_HOST_PASSWORD"),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
            "use_ssl": env_bool("EMAIL_USE_SSL", False),
            "timeout": 20,
        },
    }
elif EMAIL_MODE == "mailgun":
    _mailer = {"BACKEND": "anymail.backends.mailgun.EmailBackend"}
    ANYMAIL = {
        "MAILGUN_API_KEY": env_str("MAILGUN_API_KEY"),
        "MAILGUN_SENDER_DOMAIN": env_str("MAILGUN_SENDER_DOMAIN"),
        "MAILGUN_API_URL": env_str("MAILGUN_API_URL", "https://api.mailgun.net/v3"),
    }
    if not ANYMAIL["MAILGUN_API_KEY"]:
        raise ConfigurationError("PIPETOWER_EMAIL=mailgun needs MAILGUN_API_KEY.")
else:
    raise ConfigurationError(
        f"PIPETOWER_EMAIL must be console, smtp or mailgun, not {EMAIL_MODE!r}."
    )
MAILERS = {"default": _mailer}

# --- tasks (Celery) ----------------------------------------------------------
# No BROKER_URL means the embedded default: kombu's filesystem transport, which
# needs no broker process (see docs/architecture.md for why).
BROKER_URL = env_str("BROKER_URL")
# "localhost" only names this machine; without a host kombu logs a warning.
CELERY_BROKER_URL = BROKER_URL or "filesystem://localhost/"
if not BROKER_URL:
    _queue = DATA_DIR / "queue"
    for _sub in ("messages", "processed", "control"):
        (_queue / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "messages"),
        "data_folder_out": str(_queue / "messages"),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
        "control_folder": str(_queue / "control"),
        "polling_interval": 0.1,
    }
else:
    # Tasks are acknowledged when they end (acks_late), so Redis hands a task whose
    # worker died to another worker after this many seconds. A shard longer than
    # that is delivered again while it still runs; the copy finds its targets held
    # by a live shard (fresh heartbeat) and ends at once, so this bound need not
    # fit the longest shard: what a dead worker held is recovered by the reaper
    # (docs/actions.md, "Worker loss"), and this covers a task taken but not yet
    # started.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("PIPETOWER_BROKER_VISIBILITY_TIMEOUT", 90),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("PIPETOWER_TASKS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Quiet start: what tasks print (the console email backend) goes to the terminal as
# is, not as "WARNING/ForkPoolWorker-1" log lines, and Celery keeps Pipetower's
# logging format instead of installing its own.
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A lost broker connection is retried for ever (a worker must outlive a Redis
# restart, however long), at most every 30 s.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# Three queues, so that long runs never delay a sign-in email or the heartbeat
# (docs/architecture.md, "Queues"). `pipetower worker` takes tasks from all of
# them unless told `--queues`; `pipetower serve` runs one worker for runs and
# one for the rest.
QUEUE_RUNS, QUEUE_MAIL, QUEUE_HOUSEKEEPING = "runs", "mail", "housekeeping"
TASK_QUEUES = (QUEUE_RUNS, QUEUE_MAIL, QUEUE_HOUSEKEEPING)
CELERY_TASK_DEFAULT_QUEUE = QUEUE_HOUSEKEEPING
# Declared, so that a plain `celery worker` (no -Q) also takes all three.
CELERY_TASK_QUEUES = tuple(Queue(name) for name in TASK_QUEUES)
CELERY_TASK_ROUTES = {
    "pipetower.actions.tasks.run_shard_execute_task": {"queue": QUEUE_RUNS},
    # A connection test may wait on a silent host: with the runs, not before an email.
    "pipetower.servers.tasks.server_check_task": {"queue": QUEUE_RUNS},
    "pipetower.teams.tasks.invitation_send_task": {"queue": QUEUE_MAIL},
    "pipetower.accounts.tasks.signin_alert_send_task": {"queue": QUEUE_MAIL},
    "pipetower.support.tasks.newsletter_send_task": {"queue": QUEUE_MAIL},
    "pipetower.support.tasks.survey_send_task": {"queue": QUEUE_MAIL},
    "pipetower.privacy.tasks.subprocessor_change_send_task": {"queue": QUEUE_MAIL},
    "pipetower.privacy.tasks.policy_announce_task": {"queue": QUEUE_MAIL},
}
# Work committed with a task to send is written to the outbox in the same
# transaction (pipetower/core/outbox.py); what could not be sent is sent again
# by the scheduler's sweep.
OUTBOX_SWEEP_SECONDS = 15.0
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "pipetower.core.tasks.heartbeat_task", "schedule": 15.0},
    "outbox-sweep": {
        "task": "pipetower.core.tasks.outbox_sweep_task",
        "schedule": OUTBOX_SWEEP_SECONDS,
    },
    # Starts the runs of due schedules (pipetower/actions/schedules.py); safe with
    # several schedulers, each due time is claimed once.
    "start-due-schedules": {
        "task": "pipetower.actions.tasks.schedules_tick_task",
        "schedule": float(env_int("PIPETOWER_SCHEDULE_TICK_SECONDS", 15)),
    },
    # Webhook deliveries older than the replay window are forgotten (docs/webhooks.md).
    "purge-webhook-deliveries": {
        "task": "pipetower.actions.tasks.webhook_deliveries_purge_task",
        "schedule": timedelta(hours=1),
    },
    # Notification delivery log rows past PIPETOWER_NOTIFY_LOG_DAYS (docs/notifications.md).
    "purge-notification-deliveries": {
        "task": "pipetower.notifications.tasks.notification_deliveries_purge_task",
        "schedule": timedelta(hours=1),
    },
    # Approval requests past PIPETOWER_APPROVAL_HOURS end their runs as not started
    # (docs/actions.md, "Approvals").
    "expire-approval-requests": {
        "task": "pipetower.actions.tasks.approvals_expire_task",
        "schedule": timedelta(minutes=5),
    },
    "reap-lost-run-targets": {
        "task": "pipetower.actions.tasks.run_targets_reap_task",
        "schedule": 15.0,
    },
    # Finished runs older than their team's run history period (90 days unless the team
    # chose otherwise) are deleted with their output (docs/teams.md, "Run history").
    "purge-expired-runs": {
        "task": "pipetower.teams.tasks.runs_expired_purge_task",
        "schedule": timedelta(hours=1),
    },
    "purge-expired-invitations": {
        "task": "pipetower.teams.tasks.invitations_purge_task",
        "schedule": timedelta(hours=6),
    },
    # Accounts and teams whose deletion grace period has ended are erased (docs/privacy.md).
    "purge-deleted-accounts": {
        "task": "pipetower.privacy.tasks.account_deletions_purge_task",
        "schedule": timedelta(hours=1),
    },
    # Saved mail past PIPETOWER_MAIL_RETENTION_DAYS is deleted (docs/privacy.md).
    "purge-expired-mail": {
        "task": "pipetower.privacy.tasks.mail_expired_purge_task",
        "schedule": timedelta(hours=6),
    },
    # Staff reminders at day 20 and 25 of a privacy request; unconfirmed ones purged
    # (docs/privacy.md, "Your requests").
    "privacy-requests-housekeeping": {
        "task": "pipetower.privacy.tasks.data_subject_requests_housekeeping_task",
        "schedule": timedelta(hours=1),
    },
    "purge-expired-exports": {
        "task": "pipetower.privacy.tasks.export_jobs_purge_task",
        "schedule": timedelta(hours=6),
    },
    # Owners get a summary of what staff did once a support grant ends (docs/privacy.md).
    "summarise-ended-support-grants": {
        "task": "pipetower.privacy.tasks.support_grants_summarise_task",
        "schedule": timedelta(minutes=15),
    },
}
WORKER_HEARTBEAT_STALE_AFTER = timedelta(seconds=90)

# --- files -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names, cached by browsers for a year (pipetower/core/staticfiles.py).
    "staticfiles": {"BACKEND": "pipetower.core.staticfiles.HashedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 5_242_880
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MAX_SIDE = 512

# --- security (docs/security.md) ---------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Pages carry the CSRF token in the HTML; no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# No inline script or style anywhere: every script is a file under /static/.
# data: images are the two-factor QR code; Google sign-in posts a form that
# redirects to Google, which form-action must allow.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF, "https://accounts.google.com"],
    "frame-ancestors": [CSP.NONE],
}
# A form refused for a missing or wrong CSRF token explains cookies (docs/cookies.md).
CSRF_FAILURE_VIEW = "pipetower.analytics.views.csrf_failure"
# The operator's own analytics script (e.g. https://stats.example.com/script.js),
# loaded only for visitors who agreed to analytics cookies. Its origin joins
# script-src, connect-src and img-src only on their pages (docs/cookies.md).
ANALYTICS_SNIPPET_URL = env_str("PIPETOWER_ANALYTICS_SNIPPET_URL")
if ANALYTICS_SNIPPET_URL and (
    not ANALYTICS_SNIPPET_URL.startswith(("https://", "http://"))
    or not urlsplit(ANALYTICS_SNIPPET_URL).netloc
):
    raise ConfigurationError(
        "PIPETOWER_ANALYTICS_SNIPPET_URL must be a full http(s) address of a script, "
        f"not {ANALYTICS_SNIPPET_URL!r}."
    )
if PRODUCTION and ANALYTICS_SNIPPET_URL.startswith("http://"):
    raise ConfigurationError("PIPETOWER_ANALYTICS_SNIPPET_URL must use https in production.")
# Third-party scripts the operator adds, each with its consent category and the
# cookies it stores (JSON, docs/cookies.md): loaded only after that consent,
# named on the banner and the cookie page, their cookies removed on withdrawal.
THIRD_PARTY_SCRIPTS = parse_third_party_scripts(
    env_str("PIPETOWER_THIRD_PARTY_SCRIPTS"), production=PRODUCTION
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# Failed API token attempts allowed per client address before a 429.
API_TOKEN_FAILURE_LIMIT = _rate_setting(
    "PIPETOWER_API_TOKEN_FAILURE_LIMIT", env_str("PIPETOWER_API_TOKEN_FAILURE_LIMIT", "10/m")
)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("PIPETOWER_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("PIPETOWER_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- client addresses, sign-in log, geolocation (docs/security.md) -----------
TRUSTED_PROXIES = env_list("PIPETOWER_TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ConfigurationError(
            f"PIPETOWER_TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR network."
        ) from None
CLIENT_IP_HEADER = env_str("PIPETOWER_CLIENT_IP_HEADER")
if CLIENT_IP_HEADER and not TRUSTED_PROXIES:
    raise ConfigurationError(
        "PIPETOWER_CLIENT_IP_HEADER is honoured only for requests from a trusted proxy: "
        "set PIPETOWER_TRUSTED_PROXIES too."
    )
GEOIP_PATH = env_str("PIPETOWER_GEOIP_PATH")

# --- addresses Pipetower connects to for people (docs/security.md) -----------
FORBIDDEN_NETWORKS = env_str(
    "PIPETOWER_FORBIDDEN_NETWORKS",
    _netguard.PRODUCTION_DEFAULT if PRODUCTION else _netguard.DEVELOPMENT_DEFAULT,
)
try:
    _netguard.parse_rules(FORBIDDEN_NETWORKS)
except ValueError as _exc:
    raise ConfigurationError(str(_exc)) from None
SIGNIN_ALERT_LINK_TTL = timedelta(days=7)

# --- internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- product -----------------------------------------------------------------
INVITATION_TTL = timedelta(days=7)
# Privacy (docs/privacy.md): days between "delete my account" and the erasure.
DELETION_GRACE_DAYS = env_int("PIPETOWER_DELETION_GRACE_DAYS", 14)
EXPORT_TTL = timedelta(days=7)
API_PAGE_SIZE = 50
# Actions and runs (docs/actions.md).
ACTIONS_OUTPUT_LIMIT_BYTES = env_int("PIPETOWER_OUTPUT_LIMIT_BYTES", 10 * 1024 * 1024)
ACTIONS_SHARD_SIZE = env_int("PIPETOWER_RUN_SHARD_SIZE", 100)
ACTIONS_WORKER_LOST_AFTER = timedelta(seconds=env_int("PIPETOWER_WORKER_LOST_AFTER", 60))
# A schedule's time later than this when the scheduler reaches it counts as missed
# (Pipetower was down): then at most one catch-up run starts, if the schedule asks.
ACTIONS_SCHEDULE_GRACE_SECONDS = env_int("PIPETOWER_SCHEDULE_GRACE_SECONDS", 120)
# Webhook triggers (docs/webhooks.md): the largest body, how long an accepted
# delivery id is remembered against replays, and deliveries per hook.
ACTIONS_WEBHOOK_BODY_MAX_BYTES = env_int("PIPETOWER_WEBHOOK_BODY_MAX_BYTES", 256 * 1024)
ACTIONS_WEBHOOK_REPLAY_WINDOW = timedelta(hours=env_int("PIPETOWER_WEBHOOK_REPLAY_HOURS", 24))
ACTIONS_WEBHOOK_RATE_LIMIT = _rate_setting(
    "PIPETOWER_WEBHOOK_RATE_LIMIT", env_str("PIPETOWER_WEBHOOK_RATE_LIMIT", "60/m")
)
ACTIONS_KEEPALIVE_SECONDS = env_int("PIPETOWER_SSH_KEEPALIVE_SECONDS", 15)
# Warm connections (docs/actions.md): seconds a worker keeps an SSH connection open
# after a script for the next run on that server (0: off), per host and per worker.
ACTIONS_SSH_IDLE_SECONDS = env_int("PIPETOWER_SSH_IDLE_SECONDS", 60)
ACTIONS_SSH_WARM_PER_HOST = env_int("PIPETOWER_SSH_WARM_PER_HOST", 4)
ACTIONS_SSH_WARM_PER_WORKER = env_int("PIPETOWER_SSH_WARM_PER_WORKER", 500)
# Approvals (docs/actions.md): hours a run that requires approval waits for a decision.
ACTIONS_APPROVAL_HOURS = env_int("PIPETOWER_APPROVAL_HOURS", 24)
# Notifications (docs/notifications.md): how long a webhook receiver may take to
# answer, how many times a failed delivery is retried (waiting NOTIFY_BACKOFF_SECONDS,
# then twice as long each time), whether webhook URLs may point at loopback, private
# and link-local addresses, and how long the delivery log is kept.
try:
    NOTIFY_TIMEOUT = float(env_str("PIPETOWER_NOTIFY_TIMEOUT", "5"))
    NOTIFY_BACKOFF_SECONDS = float(env_str("PIPETOWER_NOTIFY_BACKOFF_SECONDS", "10"))
except ValueError:
    raise ConfigurationError(
        "PIPETOWER_NOTIFY_TIMEOUT and PIPETOWER_NOTIFY_BACKOFF_SECONDS are seconds, "
        "such as 5 or 0.5."
    ) from None
NOTIFY_RETRIES = env_int("PIPETOWER_NOTIFY_RETRIES", 5)
NOTIFY_ALLOW_PRIVATE = env_bool("PIPETOWER_NOTIFY_ALLOW_PRIVATE", False)
NOTIFY_LOG_DAYS = env_int("PIPETOWER_NOTIFY_LOG_DAYS", 30)
if NOTIFY_TIMEOUT <= 0 or NOTIFY_RETRIES < 0 or NOTIFY_BACKOFF_SECONDS < 0 or NOTIFY_LOG_DAYS < 1:
    raise ConfigurationError(
        "PIPETOWER_NOTIFY_TIMEOUT must be above 0, PIPETOWER_NOTIFY_RETRIES and "
        "PIPETOWER_NOTIFY_BACKOFF_SECONDS 0 or more, PIPETOWER_NOTIFY_LOG_DAYS 1 or more."
    )
# Web processes of `pipetower web` and `pipetower serve` (0: one per CPU core).
WEB_PROCESSES = env_int("PIPETOWER_WEB_PROCESSES", 0)
if WEB_PROCESSES < 0:
    raise ConfigurationError(
        f"PIPETOWER_WEB_PROCESSES must be 0 (one per CPU core) or more, not {WEB_PROCESSES}."
    )
# API requests per person, counted atomically (pipetower/core/ratelimit.py).
API_RATE_LIMIT = _rate_setting(
    "PIPETOWER_API_RATE_LIMIT", env_str("PIPETOWER_API_RATE_LIMIT", "600/m")
)
# Privacy requests filed without an account, per client address (each one mails a code).
PRIVACY_REQUEST_RATE_LIMIT = _rate_setting(
    "PIPETOWER_PRIVACY_REQUEST_RATE_LIMIT", env_str("PIPETOWER_PRIVACY_REQUEST_RATE_LIMIT", "5/h")
)
# Subscriptions to the subprocessor list per client address (each one mails a link).
SUBSCRIBE_RATE_LIMIT = _rate_setting(
    "PIPETOWER_SUBSCRIBE_RATE_LIMIT", env_str("PIPETOWER_SUBSCRIBE_RATE_LIMIT", "5/h")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        # Tokens in logged paths (invitations, reset links, ...) become [redacted].
        "secrets": {"()": "pipetower.core.logsafe.RedactSecrets"},
        "client_errors": {"()": "pipetower.core.logfilters.ClientErrorWithoutTraceback"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["secrets", "client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("PIPETOWER_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # asyncssh logs several INFO lines per connection; a fleet run makes thousands.
        "asyncssh": {"level": "WARNING"},
    },
}

"""Pipetower settings: environment variables with a runnable default.

The README's configuration table lists every variable read here.
"""

from __future__ import annotations

from datetime import timedelta

import dj_database_url

from pipetower.config.env import (
    ConfigurationError,
    data_dir,
    env_bool,
    env_int,
    env_list,
    env_str,
    generated_secrets,
)

ENVIRONMENT = env_str("PIPETOWER_ENV", "development").lower()
if ENVIRONMENT not in {"development", "production"}:
    raise ConfigurationError(
        f"PIPETOWER_ENV must be 'development' or 'production', not {ENVIRONMENT!r}."
    )
PRODUCTION = ENVIRONMENT == "production"

DATA_DIR = data_dir()
PORT = env_int("PIPETOWER_PORT", 8000)
BASE_URL = env_str("PIPETOWER_BASE_URL", f"http://localhost:{PORT}").rstrip("/")

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
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.usersessions",
    "pipetower.core",
    "pipetower.accounts",
    "pipetower.teams",
    "pipetower.audit",
    "pipetower.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "pipetower.teams.middleware.CurrentTeamMiddleware",
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
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=20000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache -------------------------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
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
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
MFA_ADAPTER = "allauth.mfa.adapter.DefaultMFAAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
if env_str("GOOGLE_CLIENT_ID"):
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [
            {
                "client_id": env_str("GOOGLE_CLIENT_ID"),
                "secret": env_str("GOOGLE_CLIENT_SECRET"),
            }
        ],
        "SCOPE": ["openid", "profile", "email"],
    }
USERSESSIONS_TRACK_ACTIVITY = True

# --- email -------------------------------------------------------------------
EMAIL_MODE = env_str("PIPETOWER_EMAIL", "console").lower()
DEFAULT_FROM_EMAIL = env_str("PIPETOWER_FROM_EMAIL", "Pipetower <pipetower@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MAIL_DIR = DATA_DIR / "mail"
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
CELERY_BROKER_URL = BROKER_URL or "filesystem://"
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
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("PIPETOWER_TASKS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "pipetower.core.tasks.heartbeat_task", "schedule": 15.0},
    "purge-expired-invitations": {
        "task": "pipetower.teams.tasks.invitations_purge_task",
        "schedule": timedelta(hours=6),
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
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 5_242_880
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MAX_SIDE = 512

# --- security ----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
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

# --- internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- product -----------------------------------------------------------------
INVITATION_TTL = timedelta(days=7)
API_PAGE_SIZE = 50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PIPETOWER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

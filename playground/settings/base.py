"""Settings shared by every environment. All deployment knobs are environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(environ.Env().str("PLAYGROUND_DATA_DIR", default=str(BASE_DIR / ".data")))

env = environ.Env()

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "playground.accounts",
    "playground.chat",
    "playground.media",
    "playground.dashboard",
    "playground.generations",
    "playground.api",
    "playground.arena",
]

MIDDLEWARE = [
    # /healthz and /readyz: first, so probes skip the host check, HTTPS redirect and sessions.
    "playground.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every Django response (django-csp; see CONTENT_SECURITY_POLICY).
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login throttling (django-axes): last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
]

# No inline or foreign script runs on any page: pages load their code from static files,
# and rendered model output (sanitised anyway) could not run a script if it slipped one in.
# Inline style *attributes* are allowed: KaTeX positions every glyph with them. /gradio/ is
# mounted beside Django (asgi.py) and sends no such header: Gradio needs inline scripts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-elem": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # CSP 3: 'self' includes this host's ws:// and wss://
        "object-src": [NONE],
        "frame-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "playground.urls"
ASGI_APPLICATION = "playground.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL / REDIS_URL are always set: by the operator, or by
# `python -m playground.devservers` which starts embedded servers when they are absent.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/playground")
}
# No persistent connections under ASGI (Django's documentation: "When using ASGI, persistent
# connections should be disabled. Instead, use your database backend's built-in connection
# pooling"): with CONN_MAX_AGE > 0 every thread that ever ran a query kept its own
# connection, and the web process piled up idle ones until PostgreSQL refused clients.
# Instead each process has one psycopg pool of at most DATABASE_POOL_MAX_SIZE connections;
# Django hands a connection back to it at the end of each request or task. A request that
# finds the pool empty waits up to DATABASE_POOL_TIMEOUT_S, then fails (PoolTimeout).
# The pool also keeps a new connection's ~10 ms off each request and task.
# DATABASE_POOL_MAX_SIZE=0 turns the pool off (a connection per request; for PgBouncer).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=2), DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT_S", default=10.0),
        # Idle connections above min_size are closed after this long.
        "max_idle": env.float("DATABASE_POOL_MAX_IDLE_S", default=300.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# redis-py 8 times reads out after 5 s by default, exactly as long as the blocking reads
# of our relay (XREAD BLOCK) wait. Reads must outlast them.
REDIS_SOCKET_TIMEOUT_S = 30
# No channel layer: sockets follow generations through the event log, and a layer's
# receive loop would drop every socket whenever Redis blinks.

# The address model workers fetch media from (signed /media/blob/ URLs in their jobs).
PLAYGROUND_INTERNAL_URL = env.str(
    "PLAYGROUND_INTERNAL_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
)
# ... so its host name is always allowed (compose: "web", whatever the public names are;
# the proxy's health checks use it too).
_internal_host = urlsplit(PLAYGROUND_INTERNAL_URL).hostname
if _internal_host and _internal_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_internal_host)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling with django-axes: after AXES_FAILURE_LIMIT failed logins for one
# username from one address, that pair is locked out for AXES_COOLOFF_MINUTES (a readable
# page, HTTP 429). Locking the pair, not the username alone, keeps an attacker from
# locking a user out of their own account from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False
# The address locked is the connection's (django-axes without ipware). Behind a reverse
# proxy, run uvicorn with --forwarded-allow-ips=<the proxy's address> so it replaces the
# connection's address with the client's from X-Forwarded-For, and only the proxy is
# trusted to set it.

# Per-user quotas (playground.generations.quotas), for the socket, the API and Gradio
# alike; 0 = unlimited. Overridden per group and per user in the admin (Quota overrides).
PLAYGROUND_QUOTAS = {
    "requests_per_minute": env.int("PLAYGROUND_QUOTA_REQUESTS_PER_MINUTE", default=60),
    "concurrent": env.int("PLAYGROUND_QUOTA_CONCURRENT", default=8),
    "tokens_per_day": env.int("PLAYGROUND_QUOTA_TOKENS_PER_DAY", default=5_000_000),
    "upload_bytes_per_day": env.int("PLAYGROUND_QUOTA_UPLOAD_BYTES_PER_DAY", default=4 * 1024**3),
}

# The arena (playground/arena): the served models it pairs at random (empty: every served
# model), and one output budget for both answers of a battle, so length is not what wins.
PLAYGROUND_ARENA = {
    "MODELS": env.list("PLAYGROUND_ARENA_MODELS", default=[]),
    "MAX_TOKENS": env.int("PLAYGROUND_ARENA_MAX_TOKENS", default=1024),
}

# The OpenAI-compatible API's request body limit (413 above it; Django's own in-memory
# limit, DATA_UPLOAD_MAX_MEMORY_SIZE, is 2.5 MB).
API_MAX_BODY_BYTES = env.int("PLAYGROUND_API_MAX_BODY_BYTES", default=2_000_000)

# Who may create an account: "open" (anyone), "invite" (with an unused invite code from
# the admin or `manage.py invite`), "closed" (only operators, with createsuperuser).
SIGNUP_MODE = env.str("PLAYGROUND_SIGNUP_MODE", default="open")  # production: "invite"
if SIGNUP_MODE not in ("open", "invite", "closed"):
    raise ValueError(f"PLAYGROUND_SIGNUP_MODE must be open, invite or closed, not {SIGNUP_MODE!r}")

LOGIN_URL = "login"
LOGIN_URL_PATH = "/accounts/login/"  # for the Gradio app, outside Django's URL resolver
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# Dashboard days and the times shown on pages are in this zone (storage is always UTC).
TIME_ZONE = env.str("PLAYGROUND_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [
    BASE_DIR / "frontend" / "static",
    # npm packages used in the browser (`make` runs `npm ci` in frontend/).
    ("vendor/chart.js", BASE_DIR / "frontend" / "node_modules" / "chart.js" / "dist"),
]
# `collectstatic` writes here; compose collects into a volume the proxy serves /static/ from.
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(DATA_DIR / "staticfiles")))

# --- Media uploads ----------------------------------------------------------------
# Uploads always go to a temporary file on disk (never RAM), then into PostgreSQL.
# The ASGI handler spools request bodies past this size to disk; 0 would mean "never".
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
MEDIA_QUEUE = "media"  # thumbnails and poster frames; `make run` starts a worker for it
MEDIA_LIMITS = {
    "MAX_FILE_BYTES": env.int("PLAYGROUND_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024),
    "MAX_VIDEO_SECONDS": env.float("PLAYGROUND_MAX_VIDEO_SECONDS", default=600.0),
    "MAX_IMAGE_PIXELS": env.int("PLAYGROUND_MAX_IMAGE_PIXELS", default=50_000_000),
    "MAX_FILES_PER_MESSAGE": env.int("PLAYGROUND_MAX_FILES_PER_MESSAGE", default=5),
    # Lifetime of a signed media URL in a job: covers the longest wait in the queue.
    "BLOB_URL_TTL_S": env.int("PLAYGROUND_BLOB_URL_TTL_S", default=6 * 3600),
}

# --- Request bodies ---------------------------------------------------------------
# Limited at the ASGI edge (playground.edge), from the headers, before a byte is read or
# spooled: uploads (POST /media/, Gradio's upload) to UPLOAD_MAX_BODY_BYTES (one file at
# the media limit plus its multipart framing), the API to API_MAX_BODY_BYTES, everything
# else to DATA_UPLOAD_MAX_MEMORY_SIZE (also Django's own limit on request.body and forms).
# The proxy (docker/Caddyfile) enforces the same numbers: compose hands both these variables.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("PLAYGROUND_MAX_REQUEST_BODY_BYTES", default=2_621_440)
MULTIPART_ALLOWANCE_BYTES = 1024 * 1024
UPLOAD_MAX_BODY_BYTES = env.int(
    "PLAYGROUND_MAX_UPLOAD_BODY_BYTES",
    default=MEDIA_LIMITS["MAX_FILE_BYTES"] + MULTIPART_ALLOWANCE_BYTES,
)
if MEDIA_LIMITS["MAX_FILE_BYTES"] > UPLOAD_MAX_BODY_BYTES:
    raise ImproperlyConfigured(
        "PLAYGROUND_MAX_UPLOAD_BODY_BYTES is below PLAYGROUND_MAX_UPLOAD_BYTES: a file at the "
        "upload limit could never arrive (allow about 1 MiB more for the multipart framing)"
    )

# --- Celery (namespace CELERY_) -------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None  # results travel through the event log, never the backend
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic jobs run on the media worker's queue (`make run` starts celery beat).
CELERY_TASK_ROUTES = {
    "dashboard.*": {"queue": "media"},
    "generations.reap": {"queue": "media"},
    "chat.purge_deleted": {"queue": "media"},
    "generations.record": {"queue": "records"},
}
CELERY_BEAT_SCHEDULE = {
    "purge-deleted-conversations": {
        "task": "chat.purge_deleted",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "refresh-usage-rollups": {
        "task": "dashboard.refresh_rollups",
        "schedule": 300.0,
        "options": {"expires": 300},  # a worker that was away does not run a backlog
    },
    "reap-lost-generations": {
        "task": "generations.reap",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
}
# Bearer token for GET /metrics (Prometheus); unset = the endpoint is off (404).
METRICS_TOKEN = env.str("PLAYGROUND_METRICS_TOKEN", default="")
# /metrics counts unfinished replies older than this as stuck (playground_replies_stuck).
METRICS_STUCK_AFTER_S = env.float("PLAYGROUND_STUCK_REPLY_S", default=600.0)

# --- Inference ------------------------------------------------------------------
# The model catalogue (inference.catalogue): built-in entries plus the JSON file
# $PLAYGROUND_CATALOGUE, the same file every model worker reads.
from inference.catalogue import catalogue_entries  # noqa: E402
from inference.config import get_config  # noqa: E402

PLAYGROUND_MODELS = catalogue_entries()
PLAYGROUND_DEFAULT_MODEL = env.str("PLAYGROUND_DEFAULT_MODEL", default="smollm2")
# A deleted conversation can be restored (Undo) for this long, then it is purged.
CHAT_UNDO_DELETE_S = env.int("PLAYGROUND_UNDO_DELETE_S", default=30)
# Models the workers of `make run` serve; comma-separated catalogue names.
PLAYGROUND_SERVED_MODELS = env.list("PLAYGROUND_SERVED_MODELS", default=["smollm2", "qwen3.5-tiny"])

_worker_side = get_config()
INFERENCE = {
    # Shared with the workers (same environment variables, inference.config).
    "EVENT_LOG_TTL_S": _worker_side.event_log_ttl_s,
    "LEASE_TTL_S": _worker_side.lease_ttl_s,
    # A followed reply whose log is silent this long is checked: alive, or lost?
    "RECONCILE_AFTER_S": env.float("PLAYGROUND_RECONCILE_AFTER_S", default=5.0),
    # A reply younger than this may still be on its way into the queue (not lost yet).
    "ENQUEUE_GRACE_S": env.float("PLAYGROUND_ENQUEUE_GRACE_S", default=30.0),
    # A queued reply is given up after this long with no worker serving its model at all.
    "QUEUE_ABANDON_S": env.float("PLAYGROUND_QUEUE_ABANDON_S", default=1800.0),
    "MAX_PROMPT_CHARS": env.int("PLAYGROUND_MAX_PROMPT_CHARS", default=32_000),
    "MAX_FRAME_BYTES": env.int("PLAYGROUND_MAX_FRAME_BYTES", default=256_000),
    # Unfinished replies one socket may follow at once; more `generate` frames are refused.
    "MAX_STREAMS_PER_SOCKET": env.int("PLAYGROUND_MAX_STREAMS_PER_SOCKET", default=64),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        # An ordinary 403 (PermissionDenied, CSRF) is one line, not a traceback.
        "client_errors_without_traceback": {
            "()": "playground.log_filters.ClientErrorsWithoutTraceback"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors_without_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"uvicorn.access": {"level": "WARNING"}},
}

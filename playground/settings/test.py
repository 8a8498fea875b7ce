"""pytest: the real services, a fast password hasher, short heartbeats, the test catalogue.

Tests use Redis database 15 (benchmarks 14) so they never touch a running playground's data.
The worker processes the tests start get the same catalogue file and timings through the
environment (tests/conftest.py: ``WORKER_ENV``).
"""

import re

from inference.catalogue import catalogue_entries
from playground.settings.base import *  # noqa: F403
from playground.settings.base import BASE_DIR, INFERENCE, MEDIA_LIMITS, REDIS_URL, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# What the workers started by the tests read from their environment (inference.config).
TEST_CATALOGUE = str(BASE_DIR / "tests" / "catalogue.json")
WORKER_ENV = {
    "PLAYGROUND_CATALOGUE": env.str("PLAYGROUND_CATALOGUE", default=TEST_CATALOGUE),
    "PLAYGROUND_HEARTBEAT_INTERVAL_S": "0.25",
    "PLAYGROUND_EVENT_LOG_TTL_S": "600",
    "PLAYGROUND_LEASE_TTL_S": "5",
    "PLAYGROUND_DRAIN_S": "3",
}
INFERENCE = {
    **INFERENCE,
    "EVENT_LOG_TTL_S": 600,
    "LEASE_TTL_S": 5.0,
    "RECONCILE_AFTER_S": 2.0,
    "ENQUEUE_GRACE_S": env.float("PLAYGROUND_ENQUEUE_GRACE_S", default=30.0),
}

REDIS_URL = (
    re.sub(r"/\d+$", "", REDIS_URL.rstrip("/")) + "/" + env.str("PLAYGROUND_TEST_REDIS_DB", "15")
)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)

# Built-in models plus the test fakes; the tiny Qwen 3.5 gets a short context, so "too
# long for the model" is cheap to reach, and short replies, so browser tests need not
# wait for 512 tokens of nonsense.
PLAYGROUND_MODELS = catalogue_entries(WORKER_ENV["PLAYGROUND_CATALOGUE"])

# Small upload limit so "too big" is cheap to test.
MEDIA_LIMITS = {**MEDIA_LIMITS, "MAX_FILE_BYTES": 8 * 1024 * 1024}

# No default quotas: the suites and benchmarks run many generations per user on purpose;
# quota tests set their own per-user overrides.
PLAYGROUND_QUOTAS = {
    "requests_per_minute": 0,
    "concurrent": 0,
    "tokens_per_day": 0,
    "upload_bytes_per_day": 0,
}

# The arena pairs the two fakes (deterministic, streams of 100 tokens at 100/s, one second);
# tests of the pairing itself override it.
PLAYGROUND_ARENA = {"MODELS": ["fake-rate", "fake-single"], "MAX_TOKENS": 100}

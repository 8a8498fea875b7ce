"""pytest: the real services, a fast password hasher, short heartbeats.

Tests use Redis database 15 (benchmarks 14) so they never touch a running playground's data.
"""

import re

from playground.settings.base import *  # noqa: F403
from playground.settings.base import (
    INFERENCE,
    MEDIA_LIMITS,
    PLAYGROUND_MODELS,
    REDIS_URL,
    channel_layers,
    env,
)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
INFERENCE = {**INFERENCE, "HEARTBEAT_INTERVAL_S": 0.25, "EVENT_LOG_TTL_S": 600}

REDIS_URL = (
    re.sub(r"/\d+$", "", REDIS_URL.rstrip("/")) + "/" + env.str("PLAYGROUND_TEST_REDIS_DB", "15")
)
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CELERY_BROKER_URL = REDIS_URL

_FAKE = {
    "backend": "fake-rate",
    "path": "-",
    "context_length": 4096,
    "max_output_tokens": 100_000,
    "options": {"rate": env.float("FAKE_RATE", default=100.0)},
}
# The tiny Qwen 3.5 with a short context, so "too long for the model" is cheap to reach,
# and short replies, so browser tests need not wait for 512 tokens of nonsense.
PLAYGROUND_MODELS = [
    {**m, "context_length": 1024, "max_output_tokens": 32} if m["name"] == "qwen3.5-tiny" else m
    for m in PLAYGROUND_MODELS
]
PLAYGROUND_MODELS = [
    *PLAYGROUND_MODELS,
    # A named fake next to the real model: long, deterministic streams at a known rate.
    {"name": "fake-rate", "display_name": "FakeRateEngine (test fake, not a model)", **_FAKE},
    # In the catalogue but served by no worker: its generations stay queued.
    {"name": "unserved", "display_name": "No worker (test)", **_FAKE},
    # Served only by the worker the reaper test starts and kills.
    {"name": "fake-doomed", "display_name": "Worker killed mid-reply (test)", **_FAKE},
]

# Small upload limit so "too big" is cheap to test.
MEDIA_LIMITS = {**MEDIA_LIMITS, "MAX_FILE_BYTES": 8 * 1024 * 1024}

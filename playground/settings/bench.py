"""Benchmarks (bench/): the test catalogue (FakeRateEngine next to SmolLM2) on its own database."""

from playground.settings.test import *  # noqa: F403
from playground.settings.test import MEDIA_LIMITS, MULTIPART_ALLOWANCE_BYTES, WORKER_ENV

WORKER_ENV = {
    **WORKER_ENV,
    "PLAYGROUND_HEARTBEAT_INTERVAL_S": "1.0",
    "PLAYGROUND_LEASE_TTL_S": "10",
}
MEDIA_LIMITS = {**MEDIA_LIMITS, "MAX_FILE_BYTES": 512 * 1024 * 1024}
UPLOAD_MAX_BODY_BYTES = MEDIA_LIMITS["MAX_FILE_BYTES"] + MULTIPART_ALLOWANCE_BYTES

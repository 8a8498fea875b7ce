"""Benchmarks (bench/): the test catalogue (FakeRateEngine next to SmolLM2) on its own database."""

from playground.settings.test import *  # noqa: F403
from playground.settings.test import INFERENCE

INFERENCE = {**INFERENCE, "HEARTBEAT_INTERVAL_S": 1.0}

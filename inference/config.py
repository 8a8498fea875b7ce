"""Worker-side settings, read from the environment: no Django, no database.

A model worker (``python -m inference.worker``) needs only ``REDIS_URL`` and
its model's catalogue entry. The Django side reads the same variables for the
values both sides must agree on (the event log's lifetime, lease length).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class InferenceConfig:
    redis_url: str
    data_dir: Path
    # Tokens are coalesced into frames this long before being appended to the log.
    frame_interval_s: float
    # How long a generation's event log stays readable after its last event.
    event_log_ttl_s: int
    heartbeat_interval_s: float
    # A running generation's lease: refreshed every heartbeat, gone this long after its
    # worker stops. No lease and no `done` means the generation is lost.
    lease_ttl_s: float
    # On SIGTERM, in-flight generations get this long to finish before they are closed
    # with their text so far.
    drain_s: float
    # How long a worker keeps trying to deliver a finished generation while Redis is down.
    delivery_s: float
    media_cache_dir: Path
    # redis-py 8 times reads out after 5 s by default, exactly as long as our blocking
    # reads wait; reads must outlast them.
    redis_socket_timeout_s: float = 30.0


@cache
def get_config() -> InferenceConfig:
    data_dir = Path(env_str("PLAYGROUND_DATA_DIR", str(ROOT / ".data")))
    heartbeat = env_float("PLAYGROUND_HEARTBEAT_INTERVAL_S", 2.0)
    return InferenceConfig(
        redis_url=env_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
        data_dir=data_dir,
        frame_interval_s=env_int("PLAYGROUND_FRAME_INTERVAL_MS", 50) / 1000.0,
        event_log_ttl_s=env_int("PLAYGROUND_EVENT_LOG_TTL_S", 3600),
        heartbeat_interval_s=heartbeat,
        lease_ttl_s=env_float("PLAYGROUND_LEASE_TTL_S", max(10.0, 3 * heartbeat)),
        drain_s=env_float("PLAYGROUND_DRAIN_S", 8.0),
        delivery_s=env_float("PLAYGROUND_DELIVERY_S", 600.0),
        media_cache_dir=Path(env_str("PLAYGROUND_MEDIA_CACHE_DIR", str(data_dir / "media-cache"))),
    )

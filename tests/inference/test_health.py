"""`python -m inference.health`: the GPU workers' container health check, on real Redis."""

from __future__ import annotations

import socket

from inference.health import main
from inference.heartbeats import PREFIX, publish_heartbeat


def test_healthy_only_while_this_hosts_worker_beats(redis_client, capsys) -> None:  # type: ignore[no-untyped-def]
    from inference.redis_clients import get_redis

    worker = f"health-model@{socket.gethostname()}:4242"
    assert main(["--model", "health-model"]) == 1
    assert "no live worker" in capsys.readouterr().out
    publish_heartbeat(get_redis(), worker, {"model": "health-model"}, 1.0)
    try:
        assert main(["--model", "health-model"]) == 0
        assert worker in capsys.readouterr().out
        assert main(["--model", "other-model"]) == 1  # another model's worker is not healthy
    finally:
        redis_client.delete(PREFIX + worker)
    assert main(["--model", "health-model"]) == 1

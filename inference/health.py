"""``python -m inference.health --model NAME``: exit 0 when this host's worker for NAME is
beating in Redis (its engine loaded and its heartbeat fresh), 1 otherwise.

The container health check for model workers: a worker has no HTTP port, and a process
that is up but whose engine failed to load, or that lost Redis, must not count as healthy.
"""

from __future__ import annotations

import argparse
import socket
import sys

from inference.heartbeats import list_workers
from inference.redis_clients import get_redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.health")
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    prefix = f"{args.model}@{socket.gethostname()}:"
    try:
        beats = list_workers(get_redis())
    except Exception as exc:  # Redis unreachable: unhealthy, with the reason
        print(f"unhealthy: cannot read heartbeats ({exc})")
        return 1
    mine = [b for b in beats if str(b.get("worker_id", "")).startswith(prefix)]
    if not mine:
        print(f"unhealthy: no live worker {prefix}*")
        return 1
    print(f"healthy: {mine[0]['worker_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

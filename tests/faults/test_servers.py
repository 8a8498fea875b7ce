"""The private servers really come back after a SIGKILL: postgres with its data, redis empty."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from tests.faults.servers import PrivatePostgres, PrivateRedis


def test_postgres_keeps_committed_rows_across_kill_and_restart(tmp_path: Path) -> None:
    server = PrivatePostgres(tmp_path)
    assert server.port not in (5432, 6379)
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE survivors (name text)")
            conn.execute("INSERT INTO survivors VALUES ('committed')")
        server.kill()
        assert not server.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, connect_timeout=1)
        server.restart()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT name FROM survivors").fetchall() == [("committed",)]
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.running


def test_redis_comes_back_empty_after_kill_and_restart(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path)
    assert server.port not in (5432, 6379)
    server.start()
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        client.set("doomed", "value")
        assert client.get("doomed") == b"value"
        server.kill()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.restart()
        assert client.ping()
        assert client.get("doomed") is None
        client.close()
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.running

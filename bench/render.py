"""Cost of rendering a streamed answer in the browser: block-by-block vs whole-text re-render.

    python bench/render.py [--kb 20] [--chunk 80]     (make bench runs it)

Bundles frontend/src/chat/markdown.js (the chat page's renderer: markdown-it, KaTeX,
highlight.js, DOMPurify) with esbuild, loads it in headless Chromium (Debian's package,
driven by Playwright), and streams a synthetic Markdown answer (headings, paragraphs,
lists, code, a table, math) into it in chunks the size of the socket's coalesced deltas.
Every chunk is rendered at once (as if each arrived on its own animation frame), both by
StreamingMarkdown (what the page does: freeze finished blocks, redo the last) and by the
naive way (render the whole text so far). Prints total milliseconds, characters handed to
the parser, and the ratio. The naive cost grows with the square of the length; the page's
with the length.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"

ENTRY = """
import { StreamingMarkdown, renderMarkdown } from "./src/chat/markdown.js";
window.bench = { StreamingMarkdown, renderMarkdown };
"""

RUN = """([text, chunk]) => {
  const { StreamingMarkdown, renderMarkdown } = window.bench;
  const chunks = [];
  for (let i = 0; i < text.length; i += chunk) chunks.push(text.slice(i, i + chunk));
  const out = {};
  // The page's way: append, then one flush per chunk (one per animation frame).
  let box = document.createElement("div");
  document.body.append(box);
  let t0 = performance.now();
  const md = new StreamingMarkdown(box, "");
  for (const c of chunks) { md.append(c); md.cancel(); md.flush(); }
  md.set(text);  // the final whole render on "done"
  out.incremental_ms = performance.now() - t0;
  out.incremental_chars = md.parsedChars;
  box.remove();
  // The naive way: render everything so far on every chunk.
  box = document.createElement("div");
  document.body.append(box);
  t0 = performance.now();
  let parsed = 0, so_far = "";
  for (const c of chunks) { so_far += c; parsed += so_far.length; box.replaceChildren(renderMarkdown(so_far)); }
  out.naive_ms = performance.now() - t0;
  out.naive_chars = parsed;
  box.remove();
  out.frames = chunks.length;
  return out;
}"""


def answer(kb: int) -> str:
    parts: list[str] = []
    i = 0
    while sum(map(len, parts)) < kb * 1000:
        parts.append(
            f"## Step {i}\n\nHere we compute **part {i}** with `f({i})`, where $x_{i} = x^{i}$"
            f" and the sum is $$\\sum_{{k=1}}^{{{i}}} k$$.\n\n- first point about {i}\n"
            f"- second point, with a [link](https://example.com/{i})\n\n"
            f"```python\ndef f(x):\n    return x * {i}  # step {i}\n```\n\n"
            f"| k | value |\n|---|---|\n| {i} | {i * i} |\n\n"
        )
        i += 1
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", type=int, default=20, help="answer size in kB (default 20)")
    parser.add_argument("--chunk", type=int, default=80, help="characters per frame (default 80)")
    args = parser.parse_args()
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("Chromium is not installed (make chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        entry = FRONTEND / ".bench-entry.mjs"
        entry.write_text(ENTRY)
        bundle = Path(tmp) / "bench.js"
        try:
            subprocess.run(
                [str(FRONTEND / "node_modules/.bin/esbuild"), entry.name, "--bundle",
                 "--format=iife", "--minify", f"--outfile={bundle}", "--log-level=warning"],
                cwd=FRONTEND, check=True,
            )  # fmt: skip
        finally:
            entry.unlink()
        text = answer(args.kb)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto("about:blank")
            page.add_script_tag(path=str(bundle))
            result = page.evaluate(RUN, [text, args.chunk])
            browser.close()
    n = len(text)
    print(f"answer: {n:,} characters in {result['frames']:,} frames of {args.chunk}")
    print(
        f"block-by-block (the page): {result['incremental_ms']:8.0f} ms, "
        f"{result['incremental_chars'] / n:6.2f} x the text parsed"
    )
    print(
        f"whole text every frame:    {result['naive_ms']:8.0f} ms, "
        f"{result['naive_chars'] / n:6.2f} x the text parsed"
    )
    print(f"naive / page: {result['naive_ms'] / max(result['incremental_ms'], 1e-9):.1f}x the time")


if __name__ == "__main__":
    main()

"""Backend-independent text handling: incremental detokenising and stop strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas.

    Decoding each token alone breaks multi-byte characters and drops the
    spaces that SentencePiece/BPE tokenizers attach to the following token,
    so a short window of previous tokens is decoded with the new ones and
    only the difference is emitted. A delta that ends in an incomplete UTF-8
    sequence is held back until the next token completes it.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith(REPLACEMENT_CHAR):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full[len(prefix) :]
        return ""


class StopStringFilter:
    """Cuts the stream at the first stop string, never showing part of one.

    Text that could still be the start of a stop string is held back until
    the next piece proves otherwise.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self._stops), default=0)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text that is safe to emit; sets ``stopped`` on a match."""
        if not self._stops:
            return text
        if self.stopped:
            return ""
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._pending = self._pending[:cut], ""
            return out
        keep = self._longest_stop_prefix_suffix()
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return out

    def flush(self) -> str:
        """At the end of the stream nothing more can complete a stop string."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out

    def _longest_stop_prefix_suffix(self) -> int:
        tail = self._pending[-self._hold :] if self._hold else ""
        for size in range(min(len(tail), self._hold - 1), 0, -1):
            suffix = tail[-size:]
            if any(stop.startswith(suffix) for stop in self._stops):
                return size
        return 0


THINK_END = "</think>"


class ReasoningSplitter:
    """Splits a Qwen-style stream into reasoning and answer at ``</think>``.

    With thinking on, the prompt already opened ``<think>``, so output is
    reasoning until ``</think>`` and answer after it. The tag can arrive cut
    across deltas (``"</th"`` + ``"ink>"``): text that could be the start of
    the tag is held back until the next piece decides. The newlines the model
    puts after the tag are not part of the answer.
    """

    def __init__(self, thinking: bool) -> None:
        self.in_reasoning = thinking
        self._pending = ""
        self._answer_started = False

    def feed(self, text: str) -> list[tuple[str, str]]:
        """Return ``(kind, text)`` pieces that are safe to emit."""
        out: list[tuple[str, str]] = []
        if self.in_reasoning:
            self._pending += text
            cut = self._pending.find(THINK_END)
            if cut < 0:
                keep = _partial_suffix(self._pending, THINK_END)
                ready = self._pending[: len(self._pending) - keep]
                self._pending = self._pending[len(self._pending) - keep :]
                if ready:
                    out.append(("reasoning", ready))
                return out
            if cut:
                out.append(("reasoning", self._pending[:cut]))
            text = self._pending[cut + len(THINK_END) :]
            self._pending = ""
            self.in_reasoning = False
        if not self._answer_started:
            text = text.lstrip("\n")
            self._answer_started = bool(text)
        if text:
            out.append(("content", text))
        return out

    def flush(self) -> list[tuple[str, str]]:
        pending, self._pending = self._pending, ""
        return [("reasoning", pending)] if pending else []


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class LoopDetector:
    """Notices degenerate output: the same span repeated back to back.

    A span of ``p`` characters repeated so that the repeats cover at least
    ``min_chars`` (and at least ``min_repeats`` times) at the end of the text
    counts as a loop. Checked on a bounded tail, so the cost per call is
    constant however long the output grows.
    """

    def __init__(
        self, min_span: int = 8, min_repeats: int = 4, min_chars: int = 256, window: int = 2048
    ) -> None:
        self.min_span = min_span
        self.min_repeats = min_repeats
        self.min_chars = min_chars
        self.window = window
        self._tail = ""

    def feed(self, text: str) -> bool:
        """Add output text; return True if the output now ends in a loop."""
        self._tail = (self._tail + text)[-self.window :]
        tail = self._tail
        for span in range(self.min_span, len(tail) // self.min_repeats + 1):
            repeats = max(self.min_repeats, -(-self.min_chars // span))
            if repeats * span > len(tail):
                break
            unit = tail[-span:]
            if tail.endswith(unit * repeats):
                return True
        return False


# Model-family plug-ins: how a family marks reasoning in its output. A catalogue
# entry names one (``reasoning_parser``); generic code never special-cases a family.
REASONING_PARSERS: dict[str, type[ReasoningSplitter]] = {"think-tags": ReasoningSplitter}


def make_reasoning_parser(name: str, thinking: bool) -> ReasoningSplitter:
    """The entry's parser; with no parser (or thinking off) all output is answer."""
    if name and name not in REASONING_PARSERS:
        raise ValueError(
            f"unknown reasoning parser {name!r}; known: {', '.join(REASONING_PARSERS)}"
        )
    return REASONING_PARSERS.get(name, ReasoningSplitter)(thinking and bool(name))

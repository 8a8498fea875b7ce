"""Continuous batching for transformers models on one thread.

Every request is prefilled on its own (batch of one, no padding), then joins
the running batch: its KV cache is left-padded to the batch's length and
concatenated along the batch dimension, and an attention mask hides the
padding. Each decode step runs all rows at once, so N streams cost little
more than one on a memory-bound CPU or GPU. Finished rows leave at once and
columns that have become padding for every row are trimmed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from engines.base import (
    FINISH_CANCELLED,
    FINISH_LENGTH,
    FINISH_STOP,
    Delta,
    EngineError,
    GenerationRequest,
)
from engines.sampling import sample_next_tokens
from engines.text import IncrementalDetokenizer, StopStringFilter
from engines.torch_prompt import PreparedPrompt

log = logging.getLogger(__name__)

Emit = Callable[[Delta | BaseException], None]


@dataclass
class Sequence:
    """One request's state inside the scheduler."""

    request: GenerationRequest
    emit: Emit
    prepared: PreparedPrompt
    prompt_ids: list[int] = field(default_factory=list)
    detokenizer: IncrementalDetokenizer | None = None
    stops: StopStringFilter | None = None
    generator: torch.Generator | None = None
    output_tokens: int = 0
    position: int = 0  # position id of the next token fed to the model
    last_token: int = 0

    @property
    def request_id(self) -> str:
        return self.request.request_id


def _pad_left(tensor: torch.Tensor, amount: int) -> torch.Tensor:
    """Pad the sequence dimension (-2) of a [B, H, L, D] tensor on the left with zeros."""
    if amount == 0:
        return tensor
    pad = tensor.new_zeros((*tensor.shape[:-2], amount, tensor.shape[-1]))
    return torch.cat([pad, tensor], dim=-2)


def _is_kv_layer(layer: Any) -> bool:
    return getattr(layer, "keys", None) is not None


def _is_linear_layer(layer: Any) -> bool:
    # Gated DeltaNet (Qwen 3.5, Qwen3-Next) layers keep fixed-size conv and recurrent states.
    return hasattr(layer, "conv_states") and hasattr(layer, "recurrent_states")


def merge_caches(batch: Any, new: Any, pad_batch: int, pad_new: int) -> None:
    """Append ``new``'s single row to ``batch`` in place.

    Attention KV is left-padded to a common length; linear-attention states
    have no sequence axis and are simply stacked. Hybrid layers have both.
    """
    for held, joining in zip(batch.layers, new.layers, strict=True):
        handled = False
        if _is_kv_layer(held):
            held.keys = torch.cat(
                [_pad_left(held.keys, pad_batch), _pad_left(joining.keys, pad_new)]
            )
            held.values = torch.cat(
                [_pad_left(held.values, pad_batch), _pad_left(joining.values, pad_new)]
            )
            handled = True
        if _is_linear_layer(held):
            for index in held.conv_states:
                for name in ("conv_states", "recurrent_states"):
                    mine, theirs = getattr(held, name)[index], getattr(joining, name)[index]
                    if mine is not None and theirs is not None:
                        getattr(held, name)[index] = torch.cat([mine, theirs])
            handled = True
        if not handled:
            raise NotImplementedError(f"cannot batch cache layer {type(held).__name__}")


def select_cache_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep only the batch rows in ``index`` (finished requests leave the batch)."""
    for layer in cache.layers:
        if _is_kv_layer(layer):
            layer.keys = layer.keys[index]
            layer.values = layer.values[index]
        if _is_linear_layer(layer):
            for name in ("conv_states", "recurrent_states"):
                states = getattr(layer, name)
                for key, value in states.items():
                    if value is not None:
                        states[key] = value[index]


def trim_cache_left(cache: Any, columns: int) -> None:
    for layer in cache.layers:
        if _is_kv_layer(layer):
            layer.keys = layer.keys[..., columns:, :]
            layer.values = layer.values[..., columns:, :]


class BatchScheduler:
    """Owns the model on one thread; requests come in through ``submit``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int,
        context_length: int,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.context_length = context_length
        self.eos_ids = self._eos_ids()
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.device = model.get_output_embeddings().weight.device
        self.tokens_generated = 0
        self._inbox: queue.Queue[Sequence] = queue.Queue()
        self._aborts: set[str] = set()
        self._abort_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self.rows: list[Sequence] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None
        self._seen: torch.Tensor | None = None
        self._thread = threading.Thread(target=self._run, name="torch-batch", daemon=True)
        self._thread.start()

    # --- called from other threads ------------------------------------------------
    def submit(self, sequence: Sequence) -> None:
        self._inbox.put(sequence)
        self._wake.set()

    def abort(self, request_id: str) -> None:
        with self._abort_lock:
            self._aborts.add(request_id)
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    @property
    def active(self) -> int:
        return len(self.rows) + self._inbox.qsize()

    # --- scheduler thread ---------------------------------------------------------
    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(configured)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._stopping:
                try:
                    self._admit()
                    self._apply_aborts()
                    if self.rows:
                        self._decode_step()
                    else:
                        self._wake.wait(timeout=0.5)
                        self._wake.clear()
                except Exception as exc:  # never let one bad step kill the worker
                    log.exception("batch step failed; failing %d request(s)", len(self.rows))
                    for row in self.rows:
                        row.emit(EngineError("engine_error", f"generation failed: {exc}"))
                    self._reset_batch()

    def _take_aborted(self, request_id: str) -> bool:
        with self._abort_lock:
            if request_id in self._aborts:
                self._aborts.discard(request_id)
                return True
        return False

    def _admit(self) -> None:
        while len(self.rows) < self.max_batch:
            try:
                sequence = self._inbox.get_nowait()
            except queue.Empty:
                return
            if self._take_aborted(sequence.request_id):
                sequence.emit(Delta(finish_reason=FINISH_CANCELLED))
                continue
            try:
                self._prefill_and_join(sequence)
            except EngineError as exc:
                sequence.emit(exc)
            except Exception as exc:  # this request's prefill only: the batch goes on
                log.exception("prefill of %s failed", sequence.request_id)
                sequence.emit(EngineError("engine_error", f"generation failed: {exc}"))

    def _apply_aborts(self) -> None:
        if not self._aborts:
            return
        keep = []
        for index, row in enumerate(self.rows):
            if self._take_aborted(row.request_id):
                row.emit(Delta(output_tokens=row.output_tokens, finish_reason=FINISH_CANCELLED))
            else:
                keep.append(index)
        if len(keep) != len(self.rows):
            self._keep_rows(keep)

    def _prefill_and_join(self, sequence: Sequence) -> None:
        from transformers import DynamicCache

        sequence.prompt_ids = sequence.prepared.input_ids
        prompt_len = len(sequence.prompt_ids)
        if prompt_len >= self.context_length:
            raise EngineError(
                "context_length_exceeded",
                f"the conversation is {prompt_len} tokens; this model's context is "
                f"{self.context_length}",
            )
        params = sequence.request.params
        # Special tokens stay in the text: Qwen's </think> and <tool_call> tags are
        # special tokens the chat layer must see. End-of-turn tokens never get here.
        sequence.detokenizer = IncrementalDetokenizer(
            lambda ids: self.tokenizer.decode(ids, skip_special_tokens=False)
        )
        sequence.stops = StopStringFilter(params.stop)
        sequence.generator = torch.Generator()
        if params.seed is not None:
            sequence.generator.manual_seed(params.seed)
        else:
            sequence.generator.seed()
        cache = DynamicCache(config=self.model.config)
        input_ids = torch.tensor([sequence.prompt_ids], device=self.device)
        vision = {
            key: value.to(self.device) if isinstance(value, torch.Tensor) else value
            for key, value in (sequence.prepared.vision or {}).items()
        }
        extra: dict[str, Any] = {}
        next_position = prompt_len
        if vision:
            # Image and video tokens share rotary positions (M-RoPE): compute them for the
            # prompt, and continue text positions after the largest one.
            positions, _ = self.model.model.get_rope_index(
                input_ids,
                vision.get("mm_token_type_ids"),
                image_grid_thw=vision.get("image_grid_thw"),
                video_grid_thw=vision.get("video_grid_thw"),
                attention_mask=vision.get("attention_mask"),
            )
            extra = {k: v for k, v in vision.items() if k != "attention_mask"}
            extra["position_ids"] = positions
            next_position = int(positions.max()) + 1
        output = self.model(
            input_ids=input_ids,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
            **extra,
        )
        seen = torch.zeros((1, self.vocab_size), dtype=torch.bool, device=self.device)
        token = int(self._sample(output.logits[:, -1], [sequence], seen)[0])
        sequence.position = next_position
        if self._accept(sequence, token, first=True):
            return
        mask = torch.ones((1, prompt_len), dtype=torch.long, device=self.device)
        seen[0, token] = True
        if self._cache is None or self._mask is None or self._seen is None:
            self._cache, self._mask, self._seen = cache, mask, seen
        else:
            held = self._mask.shape[1]
            target = max(held, prompt_len)
            merge_caches(self._cache, cache, target - held, target - prompt_len)
            self._mask = torch.cat(
                [
                    torch.nn.functional.pad(self._mask, (target - held, 0)),
                    torch.nn.functional.pad(mask, (target - prompt_len, 0)),
                ]
            )
            self._seen = torch.cat([self._seen, seen])
        self.rows.append(sequence)

    def _decode_step(self) -> None:
        assert self._mask is not None and self._seen is not None
        batch = len(self.rows)
        ones = torch.ones((batch, 1), dtype=torch.long, device=self.device)
        self._mask = torch.cat([self._mask, ones], dim=1)
        output = self.model(
            input_ids=torch.tensor([[row.last_token] for row in self.rows], device=self.device),
            attention_mask=self._mask,
            position_ids=torch.tensor([[row.position] for row in self.rows], device=self.device),
            past_key_values=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        tokens = self._sample(output.logits[:, -1], self.rows, self._seen).tolist()
        keep = []
        for index, (row, token) in enumerate(zip(self.rows, tokens, strict=True)):
            self._seen[index, token] = True
            if not self._accept(row, int(token)):
                keep.append(index)
        if len(keep) != batch:
            self._keep_rows(keep)

    def _sample(
        self, logits: torch.Tensor, rows: list[Sequence], seen: torch.Tensor
    ) -> torch.Tensor:
        params = [row.request.params for row in rows]
        # Draws come from each request's CPU generator (reproducible per seed on any device).
        uniforms = torch.cat([torch.rand(1, generator=row.generator) for row in rows])
        on = {"device": self.device}
        return sample_next_tokens(
            logits,
            temperature=torch.tensor([p.temperature for p in params], **on),
            top_k=torch.tensor([p.top_k for p in params], dtype=torch.long, **on),
            top_p=torch.tensor([p.top_p for p in params], **on),
            presence_penalty=torch.tensor([p.presence_penalty for p in params], **on),
            seen=seen,
            uniforms=uniforms.to(self.device),
        )

    def _accept(self, row: Sequence, token: int, first: bool = False) -> bool:
        """Record ``token`` for ``row`` and emit its text; return True when the row is done."""
        assert row.detokenizer is not None and row.stops is not None
        self.tokens_generated += 1
        row.output_tokens += 1
        row.last_token = token
        row.position += 0 if first else 1
        finish: str | None = None
        text = ""
        if token in self.eos_ids:
            finish = FINISH_STOP
        else:
            text = row.stops.feed(row.detokenizer.push(token))
            if row.stops.stopped:
                finish = FINISH_STOP
            elif (
                row.output_tokens >= row.request.params.max_tokens
                or row.position + 1 >= self.context_length
            ):
                finish = FINISH_LENGTH
        if finish is not None:
            text += row.stops.flush()
        row.emit(
            Delta(
                text=text,
                output_tokens=row.output_tokens,
                finish_reason=finish,
                prompt_tokens=len(row.prompt_ids) if first else 0,
                vision_tokens=row.prepared.vision_tokens if first else 0,
            )
        )
        return finish is not None

    def _keep_rows(self, keep: list[int]) -> None:
        if not keep:
            self._reset_batch()
            return
        assert self._mask is not None and self._seen is not None
        self.rows = [self.rows[i] for i in keep]
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        select_cache_rows(self._cache, index)
        self._mask = self._mask[index]
        self._seen = self._seen[index]
        # Columns that are padding for every remaining row are dead weight.
        real = self._mask.any(dim=0).nonzero()
        leading = int(real[0]) if len(real) else 0
        if leading:
            trim_cache_left(self._cache, leading)
            self._mask = self._mask[:, leading:]

    def _reset_batch(self) -> None:
        self.rows = []
        self._cache = self._mask = self._seen = None

"""The ``trtllm`` backend against FAKE ``tensorrt_llm`` (tests/fakes): the LLM API contract.

TensorRT-LLM cannot run here; the named fake mirrors the surface our backend uses and is
as strict as the real option models (unknown keys and keyword arguments fail).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from engines.base import ChatMessage, EngineError, GenerationRequest, SamplingParams
from engines.catalogue import load_catalogue
from engines.qwen35.synth import ensure_synthesised
from engines.trtllm.build import build_engine_dir
from tests.engines.test_qwen35_engine import _image_file

ROOT = Path(__file__).resolve().parents[2]
FAKES = str(ROOT / "tests" / "fakes")
TINY_MOE_VL = ROOT / ".data" / "models" / "qwen3.5-tiny-moe-vl"


def test_a_worker_host_without_tensorrt_llm_gets_a_clear_error(engine_dir: Path) -> None:
    """First in this file: before the fake is importable."""
    from engines.trtllm.engine import TrtllmEngine

    if "tensorrt_llm" in sys.modules:
        pytest.skip("a tensorrt_llm module is already loaded in this process")
    spec = load_catalogue(
        [{"name": "q-trt", "backend": "trtllm", "path": str(engine_dir), "context_length": 4096}]
    )["q-trt"]
    with pytest.raises(EngineError) as caught:
        TrtllmEngine(spec)
    assert caught.value.code == "backend_unavailable"
    assert "NVIDIA's TensorRT-LLM container" in str(caught.value)


@pytest.fixture(scope="module")
def fake_module():  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(FAKES)
        import tensorrt_llm

        assert tensorrt_llm.FAKE
        yield tensorrt_llm
        for name in [m for m in sys.modules if m.split(".")[0] == "tensorrt_llm"]:
            del sys.modules[name]


@pytest.fixture
def fake_trtllm(fake_module):  # type: ignore[no-untyped-def]
    fake_module.CALLS.clear()
    return fake_module


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    checkpoint = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    out = tmp_path_factory.mktemp("engines") / "qwen3.5-35b-a3b-h200"
    build_engine_dir("qwen3.5-35b-a3b", "h200", 1, "bf16", out, checkpoint)
    return out


def _spec(engine_dir: Path):  # type: ignore[no-untyped-def]
    return load_catalogue(
        [{"name": "q-trt", "backend": "trtllm", "path": str(engine_dir), "context_length": 262144}]
    )["q-trt"]


@pytest.fixture(scope="module")
def shared_engine(fake_module, engine_dir: Path):  # type: ignore[no-untyped-def]
    from engines.trtllm.engine import TrtllmEngine

    engine = TrtllmEngine(_spec(engine_dir))
    yield engine
    engine.close()


def _engine(engine_dir: Path):  # type: ignore[no-untyped-def]
    from engines.trtllm.engine import TrtllmEngine

    return TrtllmEngine(_spec(engine_dir))


def _request(content, rid: str = "r1", **params) -> GenerationRequest:  # type: ignore[no-untyped-def]
    return GenerationRequest(
        rid, [ChatMessage("user", content)], SamplingParams(**{"max_tokens": 6, **params})
    )


async def _collect(engine, request, stop_after: int | None = None):  # type: ignore[no-untyped-def]
    deltas = []
    stream = engine.stream(request)
    async for delta in stream:
        deltas.append(delta)
        if stop_after is not None and len(deltas) == stop_after:
            await stream.aclose()
            break
    return deltas


def test_streams_deltas_and_reports_counts(fake_trtllm, engine_dir: Path) -> None:
    engine = _engine(engine_dir)
    deltas = asyncio.run(_collect(engine, _request("Hello there")))
    assert "".join(d.text for d in deltas) == "tok0 tok1 tok2 tok3 tok4 tok5 "
    assert [d.output_tokens for d in deltas] == [1, 2, 3, 4, 5, 6]
    assert deltas[-1].finish_reason == "length"
    assert deltas[0].prompt_tokens > 5 and deltas[0].vision_tokens == 0
    # The LLM was built from the engine directory's options, as config objects.
    llm = fake_trtllm.CALLS[0]
    assert llm["event"] == "llm" and llm["model"].endswith("checkpoint")
    assert {"kv_cache_config", "moe_config", "cuda_graph_config"} <= set(llm["kwargs"])
    assert engine.info().extra["tensorrt_llm"] == "1.3.0rc9"
    engine.close()


def test_every_sampling_parameter_is_passed_and_max_tokens_always_set(
    fake_trtllm, shared_engine
) -> None:
    engine = shared_engine
    request = _request(
        "Hi",
        max_tokens=7,
        temperature=0.6,
        top_p=0.8,
        top_k=20,
        presence_penalty=1.5,
        stop=["\n\n", "END"],
        seed=1234,
    )
    asyncio.run(_collect(engine, request))
    asyncio.run(_collect(engine, _request("Hi", "r2", max_tokens=300)))
    sent = [c["sampling"] for c in fake_trtllm.CALLS if c["event"] == "generate"]
    assert sent[0] == {
        "max_tokens": 7,
        "temperature": 0.6,
        "top_p": 0.8,
        "top_k": 20,
        "presence_penalty": 1.5,
        "stop": ["\n\n", "END"],
        "seed": 1234,
        "end_id": None,
        "extra": {},
    }
    assert sent[1]["max_tokens"] == 300  # never TensorRT-LLM's default of 32
    prompt = [c["prompt"] for c in fake_trtllm.CALLS if c["event"] == "generate"][0]
    assert prompt.startswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_stop_finish_reason(fake_trtllm, shared_engine) -> None:
    deltas = asyncio.run(_collect(shared_engine, _request("FAKE_STOP please")))
    assert deltas[-1].finish_reason == "stop" and deltas[-1].output_tokens == 3


def test_abort_mid_stream(fake_trtllm, shared_engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_TRTLLM_TOKEN_S", "0.02")
    engine = shared_engine
    # The consumer goes away (Stop, a closed socket): the request is aborted in the runtime.
    deltas = asyncio.run(_collect(engine, _request("Hi", max_tokens=50), stop_after=2))
    assert len(deltas) == 2
    assert [c["event"] for c in fake_trtllm.CALLS].count("abort") == 1
    assert engine.capacity() == engine.max_batch  # the slot is free again

    async def abort_by_id():  # type: ignore[no-untyped-def]
        deltas = []
        async for delta in engine.stream(_request("Hi", "r9", max_tokens=50)):
            deltas.append(delta)
            if len(deltas) == 2:
                engine.abort("r9")
        return deltas

    deltas = asyncio.run(abort_by_id())
    assert deltas[-1].finish_reason == "cancelled" and len(deltas) < 50
    assert [c["event"] for c in fake_trtllm.CALLS].count("abort") == 2


def test_runtime_errors_become_engine_errors(fake_trtllm, shared_engine) -> None:
    engine = shared_engine
    with pytest.raises(EngineError) as caught:
        asyncio.run(_collect(engine, _request("FAKE_FAIL now", max_tokens=10)))
    assert caught.value.code == "engine_error" and "fake runtime error" in str(caught.value)
    assert engine.capacity() == engine.max_batch


def test_images_and_video_go_in_as_multimodal_data(
    fake_trtllm, shared_engine, tmp_path: Path
) -> None:
    from tests.engines.test_qwen35_video import _grey_ramp

    engine = shared_engine
    content = [
        {"type": "image", "path": str(_image_file(tmp_path))},
        {"type": "video", "path": str(_grey_ramp(tmp_path / "clip.mp4", 2.0, 10))},
        {"type": "text", "text": "What do you see?"},
    ]
    deltas = asyncio.run(_collect(engine, _request(content, max_tokens=4)))
    assert deltas[0].text == "[saw 1 image(s), 1 video(s)] "
    assert deltas[0].vision_tokens == 12  # 4 for the image, 8 for the video, as expanded
    call = [c for c in fake_trtllm.CALLS if c["event"] == "generate"][0]
    assert call["images"] == 1 and call["videos"] == 1
    assert "<|vision_start|><|image_pad|><|vision_end|>" in call["prompt"]
    assert "<|vision_start|><|video_pad|><|vision_end|>" in call["prompt"]


def test_an_old_tensorrt_llm_is_refused_naming_both_versions(
    fake_trtllm, engine_dir: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(fake_trtllm, "__version__", "1.2.0")
    with pytest.raises(EngineError) as caught:
        _engine(engine_dir)
    assert caught.value.code == "backend_too_old"
    assert "TensorRT-LLM 1.2.0 is installed" in str(caught.value)
    assert "needs 1.3.0rc9 or newer" in str(caught.value)


def test_the_fake_is_as_strict_as_the_real_option_models(fake_trtllm, engine_dir: Path) -> None:
    from tensorrt_llm import LLM, SamplingParams
    from tensorrt_llm.llmapi import KvCacheConfig, MoeConfig

    with pytest.raises(TypeError, match="extra inputs"):
        LLM(model=str(engine_dir / "checkpoint"), max_batch_sizes=8)
    with pytest.raises(TypeError, match="extra inputs"):
        KvCacheConfig(free_gpu_memory_fraction=0.9, enable_block_reuses=False)
    with pytest.raises(ValueError, match="bad backend"):
        MoeConfig(backend="WIDEEP_TYPO")
    with pytest.raises(TypeError, match="unexpected keyword"):
        SamplingParams(max_new_tokens=5)
    assert SamplingParams().max_tokens == 32


def test_a_stop_during_prompt_preparation_is_not_lost(
    fake_trtllm, shared_engine, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Stop can come while a video decodes: the request is aborted as soon as it exists."""
    import threading

    monkeypatch.setenv("FAKE_TRTLLM_TOKEN_S", "0.01")
    engine = shared_engine
    release = threading.Event()
    prepare = engine.prepare

    def slow_prepare(request):  # type: ignore[no-untyped-def]
        release.wait(10)
        return prepare(request)

    monkeypatch.setattr(engine, "prepare", slow_prepare)

    async def run():  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(_collect(engine, _request("Hi", "early", max_tokens=50)))
        await asyncio.sleep(0.2)
        engine.abort("early")  # not yet running in the runtime
        release.set()
        return await task

    deltas = asyncio.run(run())
    assert deltas[-1].finish_reason == "cancelled" and len(deltas) <= 2
    assert [c["event"] for c in fake_trtllm.CALLS].count("abort") == 1
    assert not engine._aborted and not engine._preparing


def test_a_multi_token_stop_string_never_streams_in_part(fake_trtllm, shared_engine) -> None:
    deltas = asyncio.run(_collect(shared_engine, _request("Hi", max_tokens=10, stop=["tok3 tok"])))
    text = "".join(d.text for d in deltas)
    assert text == "tok0 tok1 tok2 " and deltas[-1].finish_reason == "stop"
    assert "tok3" not in text


def test_attention_dp_admits_a_batch_per_rank(fake_trtllm, tmp_path: Path) -> None:
    from engines.trtllm.engine import TrtllmEngine

    checkpoint = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    out = tmp_path / "35b-4xh100"
    manifest = build_engine_dir("qwen3.5-35b-a3b", "h100", 4, "bf16", out, checkpoint)
    assert manifest["memory_plan"]["attention_dp"] is True
    engine = TrtllmEngine(_spec(out))
    import yaml

    per_rank = yaml.safe_load((out / "llm_options.yaml").read_text())["max_batch_size"]
    assert engine.capacity() == engine.max_batch == 4 * per_rank


def test_mtp_engines_keep_the_presets_presence_penalty(fake_trtllm, tmp_path: Path) -> None:
    from engines.trtllm.engine import TrtllmEngine

    checkpoint = ensure_synthesised(TINY_MOE_VL, moe=True, vision=True)
    out = tmp_path / "mtp"
    build_engine_dir("qwen3.5-35b-a3b", "h200", 1, "bf16", out, checkpoint, mtp=True)
    engine = TrtllmEngine(_spec(out))
    deltas = asyncio.run(_collect(engine, _request("Hi", presence_penalty=1.5, max_tokens=3)))
    assert deltas[-1].finish_reason == "length"

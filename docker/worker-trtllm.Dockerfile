# A GPU model worker: our Django-free worker package on NVIDIA's TensorRT-LLM release image.
#   docker build -f docker/worker-trtllm.Dockerfile -t qwen35-worker-trtllm .
# Qwen 3.5 runs on TensorRT-LLM's PyTorch backend from 1.3.0rc9 on.
ARG TRTLLM_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc9
FROM ${TRTLLM_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY docker/worker-trtllm.requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
# engines/ and inference/ only: the web side (playground/, Django) is not in this image.
COPY pyproject.toml README.md ./
COPY engines engines
COPY inference inference
RUN pip install --no-deps . && python -c "import inference.worker, engines.trtllm.engine"
CMD ["python", "-m", "inference.worker", "--help"]

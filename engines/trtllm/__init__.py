"""TensorRT-LLM: engine directories (``python -m engines build``) and the ``trtllm`` backend."""

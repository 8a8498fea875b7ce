"""FAKE ``tensorrt_llm.inputs``."""

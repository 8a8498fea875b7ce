"""Qwen 3.5 specifics: tokenizer, chat template, checkpoint synthesis, reasoning split."""

"""Inference engines behind one protocol. Plain Python: nothing here imports Django."""

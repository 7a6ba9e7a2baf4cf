"""Pipelines: fine-tune (target / retain models), unlearn + evaluate, evaluate, the demo."""

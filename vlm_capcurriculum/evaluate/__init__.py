"""Evaluation and analysis of trained checkpoints (docs/evaluation.md). Modules import their heavy dependencies
themselves, so importing this package is cheap."""

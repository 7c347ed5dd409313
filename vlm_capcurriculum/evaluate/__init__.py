"""Evaluation and analysis of trained checkpoints: ``vlmcc eval`` (benchmarks graded by our verifiers, or by
VLMEvalKit), ``vlmcc analyze perception`` (the paper's error audit), ``vlmcc analyze length`` (reasoning length)
and ``vlmcc report`` (plots and tables of runs). Modules import their heavy dependencies (aiohttp, matplotlib,
scipy) themselves, so importing this package is cheap."""

"""Data pipelines (``vlmcc data ...``, ``data_recipes/README.md``) on one foundation: a backend answers a
:class:`~.request.ChatRequest` (:mod:`.openai_backend`, :mod:`.vllm_backend`), the :class:`~.runner.Runner` caches
every answer (:mod:`.cache`), and :func:`~.jobs.run_job` maps rows through an async ``process(row, runner)`` into
atomic, resumable outputs. A killed run re-run with the same command replays finished rows from the cache.

Import names from their modules: :mod:`.openai_backend` needs the ``data`` extra (aiohttp), the rest does not.
"""

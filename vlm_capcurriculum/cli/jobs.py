"""Options and helpers shared by the commands that call a served model as a resumable job (``vlmcc data``,
``vlmcc eval``, ``vlmcc analyze``): model access, sampling, job files, and the errors that become one-line CLI errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vlm_capcurriculum.cli import CLIError

ROWS_FAILED = 3
# A server that answers nothing for five minutes is hung or hopelessly overloaded; a healthy one answers some
# request within seconds (--concurrency requests are in flight), even with --timeout 600 for single long ones.
DEFAULT_STALL_TIMEOUT = 300.0


def model_options(parser: argparse.ArgumentParser, *, multi: bool) -> None:
    group = parser.add_argument_group("model access")
    group.add_argument(
        "--model",
        required=True,
        action="append" if multi else "store",
        help="served model name" + (" (repeat for several filter models)" if multi else ""),
    )
    group.add_argument(
        "--base-url",
        action="append",
        help="OpenAI-compatible API root, e.g. http://localhost:8000/v1"
        + (" (once for all models, or once per --model, in order)" if multi else ""),
    )
    group.add_argument("--engine", default="openai", choices=("openai", "vllm"), help="vllm: offline engine, no server")
    group.add_argument("--api-key-env", help="environment variable holding the API key (default: OPENAI_API_KEY)")
    group.add_argument("--concurrency", type=int, default=16, help="requests in flight per model (default: 16)")
    group.add_argument("--timeout", type=float, default=600.0, help="seconds per request attempt (default: 600)")
    group.add_argument("--max-attempts", type=int, default=8, help="tries per request on 429/5xx/timeouts")
    group.add_argument("--retry-delay", type=float, default=1.0, help="first backoff delay in seconds")
    group.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help=f"stop the run when no model answered for this long (default: {DEFAULT_STALL_TIMEOUT:g} with a "
        "server; off with --engine vllm, whose model loading is silent; 0: never)",
    )


def sampling_options(parser: argparse.ArgumentParser, *, temperature: float, top_p: float, max_tokens: int) -> None:
    group = parser.add_argument_group("sampling (defaults: the paper's)")
    group.add_argument("--temperature", type=float, default=temperature, help="default: %(default)s")
    group.add_argument("--top-p", type=float, default=top_p, help="default: %(default)s")
    group.add_argument("--max-tokens", type=int, default=max_tokens, help="default: %(default)s")
    group.add_argument("--seed", type=int, help="sampling seed (sample i uses seed + i where a server ignores n)")


def job_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("job")
    group.add_argument("--output", required=True, help="output records (JSON lines)")
    group.add_argument("--cache", help="answer cache (default: OUTPUT.cache.sqlite)")
    group.add_argument("--rejects", help="rejected rows with their reason (default: OUTPUT.rejects.jsonl)")
    group.add_argument("--summary", help="run summary JSON (default: OUTPUT.summary.json)")
    group.add_argument("--limit", type=int, help="process at most this many input rows")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def beside(output: str, suffix: str) -> Path:
    return Path(output).with_suffix(suffix)


def run(args: argparse.Namespace, rows: list[dict[str, Any]], process: Any, output: Any = None, **options: Any) -> Any:
    """``run_job`` with the job options (:func:`job_options`): the answer cache beside ``--output`` by default."""
    from vlm_capcurriculum.data.jobs import run_job

    return run_job(
        rows,
        process,
        output or args.output,
        cache=args.cache or beside(args.output, ".cache.sqlite"),
        stall_timeout=stall_timeout(args),
        progress=not args.no_progress,
        **options,
    )


def write_summary(args: argparse.Namespace, summary: dict[str, Any]) -> Path:
    """The summary JSON at ``--summary`` (default: ``OUTPUT.summary.json``); returns its path."""
    path = Path(args.summary) if args.summary else beside(args.output, ".summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def backends(args: argparse.Namespace) -> list[Any]:
    """The model backends of the model options; call it inside :func:`guarded` (its errors become CLI errors)."""
    from vlm_capcurriculum.data.client import RetryPolicy
    from vlm_capcurriculum.data.openai_backend import OpenAIBackend
    from vlm_capcurriculum.data.vllm_backend import VLLMBackend

    models = args.model if isinstance(args.model, list) else [args.model]
    if len(set(models)) != len(models):
        raise CLIError(f"--model given twice: {', '.join(models)}")
    if args.engine == "vllm":
        if args.base_url:
            raise CLIError("--base-url has no meaning with --engine vllm")
        return [VLLMBackend(model) for model in models]
    urls = args.base_url or []
    if not urls:
        raise CLIError("--base-url is required (or --engine vllm)")
    if len(urls) == 1:
        urls = urls * len(models)
    if len(urls) != len(models):
        raise CLIError(
            f"give --base-url once, or once per --model ({len(models)}), not {len(args.base_url or [])} times"
        )
    retry = RetryPolicy(
        max_attempts=args.max_attempts, base_delay=args.retry_delay, max_delay=max(60.0, args.retry_delay)
    )
    return [
        OpenAIBackend(
            url,
            model,
            api_key_env=args.api_key_env,
            max_concurrency=args.concurrency,
            timeout=args.timeout,
            retry=retry,
        )
        for url, model in zip(urls, models, strict=True)
    ]


def stall_timeout(args: argparse.Namespace) -> float | None:
    value = args.stall_timeout
    if value is None:
        return None if args.engine == "vllm" else DEFAULT_STALL_TIMEOUT
    if value < 0:
        raise CLIError(f"--stall-timeout must be >= 0 (0: never), got {value:g}")
    return value or None


def sampling(args: argparse.Namespace, n: int = 1, extra: tuple[tuple[str, Any], ...] = ()) -> Any:
    from vlm_capcurriculum.data.request import SamplingParams

    return SamplingParams(
        temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, n=n, seed=args.seed, extra=extra
    )


def template(path: str | None, default: str, required: tuple[str, ...]) -> Any:
    from vlm_capcurriculum.data.prompting import PromptTemplate

    return PromptTemplate.load(path, default, required=required)


def guarded(run: Any) -> Any:
    """Turn the library's errors into one-line CLI errors: its bad-input errors are all ``ValueError``s (``InputError``,
    ``DataFileError``, ``ReportError``, ...), its access errors ``ModelAccessError``, ``CacheError`` and
    ``VLMEvalKitError``, and an input file that cannot be opened an ``OSError``."""

    def wrapper(args: argparse.Namespace) -> int:
        from vlm_capcurriculum.data.cache import CacheError
        from vlm_capcurriculum.data.client import ModelAccessError
        from vlm_capcurriculum.evaluate.vlmevalkit import VLMEvalKitError

        try:
            return int(run(args))
        except (ValueError, OSError, ModelAccessError, CacheError, VLMEvalKitError) as err:
            raise CLIError(str(err)) from None

    return wrapper

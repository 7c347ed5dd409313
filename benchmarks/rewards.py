"""Reward benchmark: accuracy, hangs and speed of our reward against the paper's reward and Math-Verify.

Run by hand from the repository root::

    python benchmarks/rewards.py                       # public cases from ../shared/bench/
    python benchmarks/rewards.py --cases PATH.jsonl    # another public-cases file

What it does, in one run:

1. Loads the labelled cases: the public yardstick (``--cases``, 224 maths cases harvested from Math-Verify's tests),
   ours in ``benchmarks/cases/*.jsonl`` (maths, choice, short answers, adversarial; hand-labelled), and a few
   adversarial cases too large to store (built by :func:`generated_adversarial`). Fields: ``response``,
   ``ground_truth``, ``label`` (1 = the response's final answer is right), ``kind``.
2. Grades every distinct case once with each grader and times it:

   * ours: :func:`vlm_capcurriculum.rewards.score` (accuracy), in-process, caches cleared, with its default (the
     paper's extraction: only a boxed answer counts, so the cases whose answer is not boxed - Math-Verify's
     free-text cases, ``needs_extraction`` - are wrong by design) and, as ``ours, lenient``, with
     ``extraction="lenient"`` (the fallback chain used for pass@K and evaluation);
   * MathRuler: ``grade_answer(extract_boxed_content(response), gold)``, the paper's reward
     (``training/reward_functions/math.py``);
   * Math-Verify: ``verify(parse("$" + gold + "$"), parse(response))`` with its default extraction.

   The baselines run in a separate process under a hard limit per call (``--baseline-timeout``); a call that
   overruns is killed, counted as a hang and graded wrong. Baselines see the plain gold answer (``"B"``, ``"3"``,
   ``"yes"``), as in the paper's datasets; ours sees the ground-truth string (which may carry the answer type and
   the options).
3. Builds the rollout batch: ``--prompts`` cases (512) x ``--rollouts`` responses each (5), the paper's rollout
   batch of 2,560; rollouts of one prompt differ in their reasoning text and share the final answer. Our reward
   scores the whole batch with ``score_batch`` (wall time; caches cleared and guard workers restarted and booted
   first, so nothing is remembered from step 2, and every response carries a fresh nonce, so no response string was
   scored before; within the batch, identical answers to one prompt are decided once,
   as in training; once more with the workers booting inside the call, the cost of a first call without
   ``prestart_pool``, which our EasyR1 and verl entry points call at load); the baselines' batch time is the sum of
   their per-call times (they have no batch path), with hung calls counted at the limit (a lower bound: in a
   trainer they would not return at all).

Tables: accuracy by kind; throughput and latency (p50/p99/max per response) on the batch and on its well-formed
part (no adversarial cases). Nothing here is a test: numbers vary with the machine; compare rows of one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("vlm_capcurriculum") is None:  # run from a clone without `pip install -e .`
    sys.path.insert(0, str(ROOT))
DEFAULT_PUBLIC = ROOT.parent / "shared" / "bench" / "reward_cases_public.jsonl"
DEFAULT_EXTRA = ROOT / "benchmarks" / "cases"
KINDS = ("math", "choice", "short", "adversarial")
COLD = "well-formed, guard booting"
LENIENT = "ours, lenient"


@dataclass
class Case:
    id: str
    response: str
    ground_truth: str
    label: int
    kind: str
    source: str

    @property
    def plain_gold(self) -> str:
        """The gold answer as the paper's datasets store it (what the baselines receive)."""
        text = self.ground_truth.strip()
        if text.startswith("{"):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                return self.ground_truth
            if isinstance(decoded, dict) and "answer" in decoded:
                answer = decoded["answer"]
                return ("yes" if answer else "no") if isinstance(answer, bool) else str(answer)
        return self.ground_truth


@dataclass
class Graded:
    correct: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    hung: list[bool] = field(default_factory=list)


def load_cases(path: Path, source: str) -> list[Case]:
    cases = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                cases.append(
                    Case(
                        str(row.get("id", f"{path.stem}-{number}")),
                        row["response"],
                        row["ground_truth"],
                        int(row["label"]),
                        row["kind"],
                        source,
                    )
                )
            except (ValueError, KeyError) as error:
                raise SystemExit(f"{path}:{number}: bad case ({error})") from error
    return cases


def generated_adversarial() -> list[Case]:
    """Adversarial responses too large to keep in the repository (all label 0)."""

    def case(name: str, response: str, gold: str) -> Case:
        return Case(f"generated-{name}", response, gold, 0, "adversarial", "generated")

    think = "<think>\nLet me work through this step by step.\n</think>\n\n"
    return [
        case("1mb-response", think + "x" * 1_000_000 + "\\boxed{1}", "1"),
        case("1mb-thinking", "<think>" + "a" * 1_000_000 + "</think>\\boxed{1}", "2"),
        case("100k-boxes", think + "\\boxed{1}" * 100_000, "2"),
        case("100k-unclosed-boxes", think + "\\boxed{" * 100_000, "1"),
        case("100k-dollars", think + "$" * 100_000, "1"),
        case("50k-display-math", think + "\\[" * 50_000 + "1", "2"),
        case("50k-open-tags", "<think>" * 50_000, "1"),
        case("50k-close-tags", "</think>" * 50_000 + "\\boxed{1}", "2"),
    ]


# ---------------------------------------------------------------- baselines, in a killable process


def _baseline_worker(connection) -> None:
    import logging

    from math_verify import parse, verify
    from mathruler.grader import extract_boxed_content, grade_answer

    logging.disable(logging.CRITICAL)

    def mathruler(response: str, gold: str) -> bool:
        return bool(grade_answer(extract_boxed_content(response), gold))

    def math_verify(response: str, gold: str) -> bool:
        return bool(verify(parse(f"${gold}$"), parse(response)))

    graders = {"MathRuler": mathruler, "Math-Verify": math_verify}
    connection.send("ready")
    while True:
        try:
            name, response, gold = connection.recv()
        except EOFError:
            return
        started = time.perf_counter()
        try:
            verdict = graders[name](response, gold)
        except Exception:
            verdict = False
        connection.send((verdict, time.perf_counter() - started))


class BaselineRunner:
    """Calls a baseline grader in a child process; kills and restarts it when a call overruns."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.context = multiprocessing.get_context("spawn")
        self.process = None
        self.connection = None

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_baseline_worker, args=(child,), daemon=True)
        self.process.start()
        self.connection = parent
        if not parent.poll(300) or parent.recv() != "ready":
            raise SystemExit("baseline worker did not start")

    def grade(self, name: str, response: str, gold: str) -> tuple[bool, float, bool]:
        """(verdict, seconds, hung)."""
        if self.process is None or not self.process.is_alive():
            self._start()
        assert self.connection is not None and self.process is not None
        self.connection.send((name, response, gold))
        if self.connection.poll(self.timeout_s):
            verdict, seconds = self.connection.recv()
            return bool(verdict), seconds, False
        self.process.kill()
        self.process.join()
        self.process = None
        return False, self.timeout_s, True

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()


# ---------------------------------------------------------------- grading


def grade_ours(cases: list[Case], timeout_s: float, extraction: str = "paper") -> Graded:
    from vlm_capcurriculum.rewards import score

    _clear_our_caches(restart_guard=True)
    graded = Graded()
    for case in cases:
        started = time.perf_counter()
        result = score(case.response, case.ground_truth, timeout_s=timeout_s, extraction=extraction)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        graded.correct.append((result["accuracy"] == 1.0) == bool(case.label))
        graded.seconds.append(seconds)
        graded.hung.append(False)
    return graded


def grade_baseline(name: str, cases: list[Case], runner: BaselineRunner) -> Graded:
    graded = Graded()
    for case in cases:
        verdict, seconds, hung = runner.grade(name, case.response, case.plain_gold)
        graded.correct.append(verdict == bool(case.label))
        graded.seconds.append(seconds)
        graded.hung.append(hung)
    return graded


def _clear_our_caches(restart_guard: bool = False, wait_for_guard: bool = True) -> None:
    """Forget everything our reward remembers between batches (parses; the guard workers hold the verdicts); with
    ``restart_guard`` also start fresh guard workers (their verdict and parser caches are empty) and, with
    ``wait_for_guard``, wait until they have booted, as in training, where they start when the reward is loaded and
    boot during the first rollouts."""
    from vlm_capcurriculum.rewards import latex, mathvalue, scoring, shutdown_pool
    from vlm_capcurriculum.rewards.guard import prestart_pool

    for module in (latex, mathvalue, scoring):  # every memo of the package, so no parse is reused
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    if restart_guard:
        shutdown_pool()
        if wait_for_guard and not prestart_pool(wait_s=120.0):
            raise SystemExit("the reward guard workers did not start within 120 s")


def rollout_batch(cases: list[Case], prompts: int, rollouts: int, seed: int) -> list[tuple[int, str]]:
    """(case index, response) for ``prompts`` cases x ``rollouts`` responses that differ in their reasoning, each
    marked with a nonce of this call: no response string of the batch was scored before in the process."""
    rng = random.Random(seed)
    nonce = f"{time.time_ns():x}"
    indices = list(range(len(cases)))
    chosen = rng.sample(indices, prompts) if prompts <= len(indices) else [rng.choice(indices) for _ in range(prompts)]
    batch = []
    for index in chosen:
        response = cases[index].response
        for rollout in range(rollouts):
            varied = response.replace("<think>", f"<think>(run {nonce}, rollout {rollout}) ", 1)
            batch.append((index, varied))
    return batch


def time_our_batch(cases: list[Case], batch: list[tuple[int, str]], timeout_s: float, *, cold: bool = False) -> float:
    """Wall time of one ``score_batch`` call; ``cold``: the guard workers boot inside it (a reward's first call
    with no prestart)."""
    from vlm_capcurriculum.rewards import score_batch

    _clear_our_caches(restart_guard=True, wait_for_guard=not cold)
    started = time.perf_counter()
    score_batch(
        [response for _, response in batch], [cases[index].ground_truth for index, _ in batch], timeout_s=timeout_s
    )
    return time.perf_counter() - started


# ---------------------------------------------------------------- report


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def print_tables(
    cases: list[Case],
    results: dict[str, Graded],
    batch: list[tuple[int, str]],
    our_batch_s: dict[str, float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    from vlm_capcurriculum.rewards.extract import find_boxes

    console = Console(width=max(Console().width, 120))
    summary: dict[str, Any] = {"accuracy": {}, "speed": {}}
    groups = {
        "math (public)": [i for i, c in enumerate(cases) if c.kind == "math" and c.source == "public"],
        "public, boxed": [i for i, c in enumerate(cases) if c.source == "public" and find_boxes(c.response)],
        "math (ours)": [i for i, c in enumerate(cases) if c.kind == "math" and c.source != "public"],
        "choice": [i for i, c in enumerate(cases) if c.kind == "choice"],
        "short": [i for i, c in enumerate(cases) if c.kind == "short"],
        "adversarial": [i for i, c in enumerate(cases) if c.kind == "adversarial"],
        "all": list(range(len(cases))),
    }
    table = Table(title=f"Accuracy on {len(cases)} labelled cases (each once)")
    table.add_column("grader")
    for group, members in groups.items():
        table.add_column(f"{group}\n(n={len(members)})", justify="right")
    table.add_column("hangs", justify="right")
    for name, graded in results.items():
        row = [name]
        summary["accuracy"][name] = {}
        for group, members in groups.items():
            accuracy = sum(graded.correct[i] for i in members) / len(members) if members else float("nan")
            summary["accuracy"][name][group] = accuracy
            row.append(f"{accuracy:.3f}")
        hangs = sum(graded.hung)
        summary["accuracy"][name]["hangs"] = hangs
        row.append(str(hangs))
        table.add_row(*row)
    console.print(table)

    speed = Table(
        title=f"Speed on the rollout batch: {args.prompts} prompts x {args.rollouts} rollouts = {len(batch)} responses"
    )
    for column in ("grader", "batch", "responses/s", "p50 ms", "p99 ms", "max ms", "hangs"):
        speed.add_column(column, justify="left" if column in ("grader", "batch") else "right")
    adversarial = {i for i, c in enumerate(cases) if c.kind == "adversarial"}
    parts = {
        "well-formed": [item for item in batch if item[0] not in adversarial],
        "all": batch,
    }
    for name, graded in results.items():
        if name == LENIENT:
            continue  # the same code: its speed is the default's
        summary["speed"][name] = {}
        name_parts = dict(parts)
        if name == "ours" and COLD in our_batch_s:
            name_parts[COLD] = parts["well-formed"]
        for part, items in name_parts.items():
            latencies = [graded.seconds[index] for index, _ in items]
            if name == "ours":
                total = our_batch_s[part]
                how = "score_batch wall time"
            else:
                total = sum(latencies)
                how = "sum of calls"
            throughput = len(items) / total if total else float("inf")
            hangs = sum(graded.hung[index] for index, _ in items)
            summary["speed"][name][part] = {
                "responses_per_s": throughput,
                "p50_ms": 1000 * percentile(latencies, 0.5),
                "p99_ms": 1000 * percentile(latencies, 0.99),
                "max_ms": 1000 * max(latencies),
                "hangs": hangs,
                "timing": how,
            }
            speed.add_row(
                name,
                f"{part} ({len(items)})" if part != COLD else part,
                f"{throughput:,.0f}",
                f"{1000 * percentile(latencies, 0.5):.2f}",
                f"{1000 * percentile(latencies, 0.99):.1f}",
                f"{1000 * max(latencies):.0f}",
                str(hangs),
            )
    console.print(speed)
    console.print(
        "Latency: per response, each distinct case timed once (ours: score(), one call each, in-process with its "
        "guard workers started; baselines: inside their process). Throughput: ours = score_batch wall time on the "
        "batch (all caches cleared, fresh guard workers that have booted, as in training where they boot during the "
        f"first rollouts; '{COLD}': the same batch with the workers booting inside the call); baselines = sum of "
        f"their calls, a hung call counted at {args.baseline_timeout:g} s. Our per-answer hard limit: {args.timeout:g} s."
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_PUBLIC, help="public labelled cases (JSONL)")
    parser.add_argument("--extra", type=Path, default=DEFAULT_EXTRA, help="folder of our labelled cases (*.jsonl)")
    parser.add_argument("--prompts", type=int, default=512, help="prompts in the rollout batch (paper: 512)")
    parser.add_argument("--rollouts", type=int, default=5, help="rollouts per prompt (paper: 5)")
    parser.add_argument("--timeout", type=float, default=2.0, help="our per-answer hard limit, seconds")
    parser.add_argument("--baseline-timeout", type=float, default=5.0, help="hard limit per baseline call, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baselines", action="store_true", help="time only our reward")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)

    if not args.cases.exists():
        raise SystemExit(f"{args.cases}: no such file (pass --cases PATH to the public reward cases)")
    cases = load_cases(args.cases, "public")
    for path in sorted(args.extra.glob("*.jsonl")):
        cases += load_cases(path, path.stem)
    cases += generated_adversarial()
    unknown = {case.kind for case in cases} - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown case kinds {sorted(unknown)}; expected {KINDS}")
    counts = defaultdict(int)
    for case in cases:
        counts[case.kind] += 1
    print(f"{len(cases)} cases: " + ", ".join(f"{kind} {counts[kind]}" for kind in KINDS))

    from vlm_capcurriculum.rewards import guard_stats

    results: dict[str, Graded] = {"ours": grade_ours(cases, args.timeout)}
    results[LENIENT] = grade_ours(cases, args.timeout, extraction="lenient")
    print("ours: graded", flush=True)
    if not args.skip_baselines:
        runner = BaselineRunner(args.baseline_timeout)
        try:
            for name in ("MathRuler", "Math-Verify"):
                results[name] = grade_baseline(name, cases, runner)
                print(f"{name}: graded", flush=True)
        finally:
            runner.close()

    batch = rollout_batch(cases, args.prompts, args.rollouts, args.seed)
    adversarial = {i for i, c in enumerate(cases) if c.kind == "adversarial"}
    well_formed = [item for item in batch if item[0] not in adversarial]
    our_batch_s = {
        "well-formed": time_our_batch(cases, well_formed, args.timeout),
        COLD: time_our_batch(cases, well_formed, args.timeout, cold=True),
        "all": time_our_batch(cases, batch, args.timeout),
    }
    summary = print_tables(cases, results, batch, our_batch_s, args)
    summary["guard_stats"] = guard_stats()
    print("guard:", summary["guard_stats"])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""Turn one raw row (our format or the paper's released files) into a validated :class:`SampleRecord`.

Column aliases, first present wins; columns an alias did not use stay in ``extra``:

=================  ==========================================================================================
record field       columns read
=================  ==========================================================================================
``problem``        ``problem`` (released stage files, passK outputs), ``prompt`` (``format_for_training.py``)
``images``         ``images`` (released files), ``image_path`` (``format_for_training.py``), ``image``;
                   a string is one image; ``{"path": ...}`` entries (datasets' Image feature) give their path
``id``             ``id``; else ``<file stem>:<index>`` from ``index`` (released files number rows per file, so
                   the stem keeps ids of two files apart); else ``<file stem>:<line or row>``
``choices``        ``choices`` (object letter -> text, or a list given letters A, B, ...); else the
                   ``option_A`` ... ``option_J`` columns of ``format_for_training.py``
``answer_type``    ``answer_type``; else ``choice`` when choices exist, else the plain-string rule of
                   :class:`AnswerSpec` (one letter A-J -> ``choice``, anything else -> ``math``)
``capability``     ``capability``; else the caller's default (the stage's capability)
=================  ==========================================================================================

The paper's released files often carry images and a problem with no ``<image>``; neither EasyR1's nor verl's
``RLHFDataset`` inserts an image without a placeholder, so the model would never see it. By default the reader
prepends one ``<image>`` per image (the reference ``format_for_training.py`` layout) and counts the row under the
note ``prepended_image_placeholder``. Some placeholders but not one per image is an error.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.schema.answer import AnswerSpec, AnswerSpecError
from vlm_capcurriculum.schema.images import ImageChecker
from vlm_capcurriculum.schema.issues import Reason, RecordIssue, RowLocation
from vlm_capcurriculum.schema.record import (
    CORE_FIELDS,
    IMAGE_PLACEHOLDER,
    SampleRecord,
    invariant_issues,
    with_leading_placeholders,
)

PROBLEM_COLUMNS = ("problem", "prompt")
IMAGE_COLUMNS = ("images", "image_path", "image")
OPTION_COLUMNS = tuple(f"option_{letter}" for letter in "ABCDEFGHIJ")
_LETTERS = "ABCDEFGHIJ"


class _RowChecker:
    """Collects every issue of one row instead of stopping at the first, so one pass shows all of them."""

    def __init__(self, location: RowLocation) -> None:
        self.location = location
        self.issues: list[RecordIssue] = []

    def fail(self, field: str, reason: Reason, message: str) -> None:
        self.issues.append(RecordIssue(self.location, field, reason, message))


def _first_present(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in row and row[name] is not None:
            return name, row[name]
    return None, None


def _as_text(value: Any) -> str | None:
    """Strings as they are; integers and floats as their decimal text (ids and numeric answers in JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return None


def _parse_images(value: Any, check: _RowChecker, column: str) -> list[str] | None:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, Mapping)) else value
    if not isinstance(items, (list, tuple)):
        check.fail(column, "bad_type", f"must be a list of image paths, got {type(value).__name__}")
        return None
    paths: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            if item.get("path"):
                paths.append(str(item["path"]))
                continue
            check.fail(column, "unsupported_image", "embedded image bytes are not supported; extract images to files")
            return None
        if not isinstance(item, str) or not item:
            check.fail(column, "bad_type", f"image paths must be non-empty strings, got {item!r}")
            return None
        paths.append(item)
    return paths


def image_paths(row: Any) -> list[str]:
    """The image paths a raw row names (empty when it names none or they are malformed: the row's validation
    reports that)."""
    if not isinstance(row, Mapping):
        return []
    column, value = _first_present(row, IMAGE_COLUMNS)
    if column is None:
        return []
    return _parse_images(value, _RowChecker(RowLocation(Path())), column) or []


def _parse_choices(row: Mapping[str, Any], check: _RowChecker, notes: Counter[str]) -> tuple[dict[str, str], set[str]]:
    """The choices and the columns they consumed."""
    value = row.get("choices")
    if value is not None and value != {} and value != []:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                check.fail("choices", "bad_choices", "must be an object of letter -> text or a list of texts")
                return {}, {"choices"}
        if isinstance(value, list) and all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in value):
            value = dict(value)  # parquet map columns read back as (key, value) pairs
        if isinstance(value, list):
            if len(value) > len(_LETTERS) or not all(isinstance(text, str) for text in value):
                check.fail("choices", "bad_choices", f"a list of choices must hold at most 10 strings, got {value!r}")
                return {}, {"choices"}
            return dict(zip(_LETTERS, value, strict=False)), {"choices"}
        if isinstance(value, Mapping):
            bad = [k for k, v in value.items() if not (isinstance(k, str) and k in _LETTERS and isinstance(v, str))]
            if bad:
                check.fail("choices", "bad_choices", f"must map letters A-J to strings; bad entries {bad!r}")
                return {}, {"choices"}
            return {k: v for k, v in value.items() if v is not None}, {"choices"}
        check.fail("choices", "bad_choices", f"must be an object of letter -> text, got {type(value).__name__}")
        return {}, {"choices"}
    options = {name[-1]: row[name] for name in OPTION_COLUMNS if row.get(name) is not None}
    if options:
        bad = [letter for letter, text in options.items() if not isinstance(text, str)]
        if bad:
            check.fail(f"option_{bad[0]}", "bad_choices", f"option texts must be strings, got {options[bad[0]]!r}")
            return {}, set(OPTION_COLUMNS)
        notes["choices_from_option_columns"] += 1
        return {letter: str(text) for letter, text in sorted(options.items())}, set(OPTION_COLUMNS)
    return {}, {"choices"}


def record_from_row(
    row: Any,
    location: RowLocation,
    *,
    image_root: Path,
    default_capability: str | None,
    check_images: bool = True,
    notes: Counter[str] | None = None,
    image_checker: ImageChecker | None = None,
) -> SampleRecord | list[RecordIssue]:
    """The record for ``row``, or every issue that keeps it from being one. ``notes`` counts normalisations.
    ``check_images``: check each image with ``image_checker`` (default: :class:`ImageChecks`' defaults)."""
    notes = notes if notes is not None else Counter()
    check = _RowChecker(location)
    if not isinstance(row, Mapping):
        check.fail("<row>", "not_an_object", f"a row must be an object, got {type(row).__name__}")
        return check.issues
    used: set[str] = set()
    row_notes: Counter[str] = Counter()

    # problem
    problem_column, problem = _first_present(row, PROBLEM_COLUMNS)
    if problem_column is None:
        check.fail("problem", "missing_field", "missing (looked for columns 'problem', 'prompt')")
    elif not isinstance(problem, str):
        check.fail(problem_column, "bad_type", f"must be a string, got {type(problem).__name__}")
        problem = None
    elif not problem.strip():
        check.fail(problem_column, "missing_field", "is empty")
        problem = None
    if problem_column:
        used.add(problem_column)

    # images
    image_column, raw_images = _first_present(row, IMAGE_COLUMNS)
    images: list[str] | None = []
    if image_column is not None:
        used.add(image_column)
        images = _parse_images(raw_images, check, image_column)
    if images and check_images:
        checker = image_checker or ImageChecker()
        for image in images:
            verdict = checker.problem(image, image_root)
            if verdict is not None:
                check.fail(image_column or "images", *verdict)

    if isinstance(problem, str) and images and IMAGE_PLACEHOLDER not in problem:
        problem = with_leading_placeholders(problem, images)
        row_notes["prepended_image_placeholder"] += 1

    # answer
    answer: str | None = None
    if "answer" not in row or row["answer"] is None:
        check.fail("answer", "missing_field", "missing")
    else:
        raw_answer = row["answer"]
        answer = "yes" if raw_answer is True else "no" if raw_answer is False else _as_text(raw_answer)
        if answer is None:
            check.fail("answer", "bad_type", f"must be a string or number, got {type(raw_answer).__name__}")
        elif not answer.strip():
            check.fail("answer", "empty_answer", "is empty")
            answer = None
    used.add("answer")

    # choices and answer type
    choices, choice_columns = _parse_choices(row, check, row_notes)
    used |= choice_columns
    answer_type = row.get("answer_type")
    used.add("answer_type")
    if answer_type is None:
        if choices:
            answer_type = "choice"
        elif answer is not None:
            try:
                answer_type = AnswerSpec.parse(answer).type
            except AnswerSpecError as err:
                check.fail("answer", "bad_type", str(err))
        if answer_type is not None:
            row_notes["inferred_answer_type"] += 1

    # id
    stem = location.path.stem
    record_id: str | None
    if row.get("id") is not None:
        record_id = _as_text(row["id"])
        if record_id is None or not record_id.strip():
            check.fail("id", "bad_type", f"must be a non-empty string or integer, got {row['id']!r}")
    elif row.get("index") is not None and _as_text(row["index"]) is not None:
        record_id = f"{stem}:{_as_text(row['index'])}"
        row_notes["derived_id"] += 1
        used.add("index")
    else:
        record_id = f"{stem}:{location.line if location.line is not None else location.row}"
        row_notes["derived_id"] += 1
    used.add("id")

    # capability
    capability = row.get("capability")
    used.add("capability")
    if capability is None:
        capability = default_capability
    if capability is None:
        check.fail("capability", "missing_field", "missing, and the stage gives no default capability")
    elif not isinstance(capability, str) or not capability.strip():
        check.fail("capability", "bad_type", f"must be a non-empty string, got {capability!r}")

    # pass rate
    pass_rate = row.get("pass_rate")
    used.add("pass_rate")
    for name, reason, message in invariant_issues(problem, images, answer, answer_type, choices, pass_rate):
        check.fail(problem_column or name if name == "problem" else name, reason, message)

    source = row.get("source")
    used.add("source")
    if source is not None and not isinstance(source, str):
        check.fail("source", "bad_type", f"must be a string, got {type(source).__name__}")

    if check.issues:
        return check.issues
    used |= set(CORE_FIELDS)
    # null is absent: a record column that is null never becomes an extra column, and a null extra column
    # (parquet fills a column missing from some rows with nulls) is dropped, so writing and reading round-trips
    extra = {key: value for key, value in row.items() if key not in used and value is not None}
    notes.update(row_notes)
    return SampleRecord(
        id=record_id,  # type: ignore[arg-type]
        capability=capability,  # type: ignore[arg-type]
        problem=problem,  # type: ignore[arg-type]
        answer=answer,  # type: ignore[arg-type]
        answer_type=answer_type,  # type: ignore[arg-type]
        images=tuple(images or ()),
        choices=choices,
        pass_rate=pass_rate,
        source=source or "",
        extra=extra,
    )


@dataclass
class UniqueRecords:
    """:func:`record_from_row` over rows whose ids must be unique across everything added: a repeated id is an
    issue naming where it was first used (the first row wins)."""

    seen: dict[str, RowLocation] = field(default_factory=dict)

    def add(self, row: Any, location: RowLocation, **options: Any) -> SampleRecord | list[RecordIssue]:
        outcome = record_from_row(row, location, **options)
        if isinstance(outcome, list):
            return outcome
        first = self.seen.get(outcome.id)
        if first is not None:
            return [RecordIssue(location, "id", "duplicate_id", f"id {outcome.id!r} already used at {first}")]
        self.seen[outcome.id] = location
        return outcome


"""Where a bad row is and what is wrong with it: file, row (1-based line for JSONL, 0-based row for JSON arrays and
parquet, as the tools people open those files with count) and field, so a user can fix the data instead of guessing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Reason = Literal[
    "invalid_json",
    "not_an_object",
    "missing_field",
    "bad_type",
    "empty_answer",
    "unknown_answer_type",
    "bad_choices",
    "choice_not_in_choices",
    "image_not_found",
    "image_outside_root",
    "image_too_large",
    "image_unreadable",
    "unsupported_image",
    "image_placeholder_mismatch",
    "pass_rate_out_of_range",
    "duplicate_id",
]

# How many issues an error message spells out before summarising the rest by reason.
MAX_LISTED_ISSUES = 20


@dataclass(frozen=True)
class RowLocation:
    """A row in a data file: ``line`` (1-based) for JSONL, ``row`` (0-based) for JSON arrays and parquet."""

    path: Path
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.row is not None:
            return f"{self.path}[row {self.row}]"
        return str(self.path)


@dataclass(frozen=True)
class RecordIssue:
    """One problem with one field of one row."""

    location: RowLocation
    field: str
    reason: Reason
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.field}: {self.message}"


@dataclass
class ReadReport:
    """What a read kept, skipped and normalised, with every issue."""

    rows_read: int = 0
    rows_kept: int = 0
    issues: list[RecordIssue] = field(default_factory=list)
    # normalisations applied to kept rows (e.g. "prepended_image_placeholder"), counted so they are visible
    notes: Counter[str] = field(default_factory=Counter)

    @property
    def rows_skipped(self) -> int:
        return self.rows_read - self.rows_kept

    def skipped_by_reason(self) -> dict[str, int]:
        """Rows skipped, counted once each under the reason of their first issue."""
        first: dict[RowLocation, str] = {}
        for issue in self.issues:
            first.setdefault(issue.location, issue.reason)
        return dict(Counter(first.values()).most_common())

    def merge(self, other: ReadReport) -> None:
        self.rows_read += other.rows_read
        self.rows_kept += other.rows_kept
        self.issues.extend(other.issues)
        self.notes.update(other.notes)

    def summary(self) -> str:
        """One line: kept/read, skipped rows by reason, notes."""
        text = f"kept {self.rows_kept} of {self.rows_read} rows"
        if self.rows_skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.skipped_by_reason().items())
            text += f"; skipped {self.rows_skipped} ({reasons})"
        if self.notes:
            text += "; " + ", ".join(f"{note} {count}" for note, count in sorted(self.notes.items()))
        return text


class DataFileError(ValueError):
    """A whole file cannot be used (missing, unreadable, wrong top-level shape): no row of it can be trusted."""


class RecordValidationError(ValueError):
    """Strict mode found bad rows. Carries every issue; the message lists the first ones and counts the rest."""

    def __init__(self, issues: list[RecordIssue], report: ReadReport | None = None) -> None:
        self.issues = list(issues)
        self.report = report
        super().__init__(format_issues(self.issues))

    def one_line(self) -> str:
        """The first issue and a count of the rest, for command-line errors."""
        first = self.issues[0]
        rest = len(self.issues) - 1
        if not rest:
            return str(first)
        counts = Counter(issue.reason for issue in self.issues[1:])
        summary = ", ".join(f"{reason} {count}" for reason, count in counts.most_common())
        return f"{first} (and {rest} more: {summary})"


def format_issues(issues: list[RecordIssue], limit: int = MAX_LISTED_ISSUES) -> str:
    lines = [f"{len(issues)} bad row field(s):"]
    lines += [f"  {issue}" for issue in issues[:limit]]
    if len(issues) > limit:
        counts = Counter(issue.reason for issue in issues[limit:])
        lines.append(f"  ... and {len(issues) - limit} more (" + ", ".join(f"{r} {c}" for r, c in counts.items()) + ")")
    return "\n".join(lines)

"""Load the records of every stage into the global index space, and plan on them.

``train_files`` entries are paths or globs (``*``, ``?``, ``[...]``, ``**``); relative ones are resolved against
``base_dir`` (default: the current directory, as EasyR1 and verl resolve ``data.train_files``). A glob matching
nothing or a missing file is an error naming the spec key. Globs expand in sorted order, so the global index
space does not depend on the file system's listing order.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from vlm_capcurriculum.curriculum.plan import Plan, PlanError
from vlm_capcurriculum.curriculum.schedule import StageData, build_plan
from vlm_capcurriculum.curriculum.spec import CurriculumSpec, Mode, StageSpec
from vlm_capcurriculum.schema import (
    DataFileError,
    ImageChecks,
    ReadReport,
    RecordValidationError,
    RowLocation,
    SampleRecord,
    read_records,
)

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class StageRecords:
    """One spec stage's validated records and where they sit in the global index space."""

    stage: StageSpec
    files: tuple[Path, ...]
    image_root: Path | None  # None: each file's own directory
    records: tuple[SampleRecord, ...]
    locations: tuple[RowLocation, ...]
    report: ReadReport
    offset: int

    def image_paths(self, local_index: int) -> tuple[Path, ...]:
        """Absolute paths of a record's images."""
        root = self.image_root if self.image_root is not None else self.locations[local_index].path.parent
        return tuple((root / image).absolute() for image in self.records[local_index].images)


@dataclass(frozen=True)
class CurriculumData:
    """Every stage's records, concatenated in stage declaration order: the global index space."""

    stages: tuple[StageRecords, ...]

    @cached_property
    def records(self) -> tuple[SampleRecord, ...]:
        """The dataset every backend builds; plan indices point into it."""
        return tuple(record for stage in self.stages for record in stage.records)

    def __len__(self) -> int:
        return sum(len(stage.records) for stage in self.stages)

    def locate(self, index: int) -> tuple[StageRecords, int]:
        """The stage holding global ``index`` and the index inside it."""
        for stage in self.stages:
            if stage.offset <= index < stage.offset + len(stage.records):
                return stage, index - stage.offset
        raise IndexError(f"index {index} outside the dataset of {len(self)} records")

    def image_paths(self, index: int) -> tuple[Path, ...]:
        """Absolute image paths of the record at global ``index``."""
        stage, local = self.locate(index)
        return stage.image_paths(local)

    def stage_data(self) -> list[StageData]:
        return [
            StageData(
                len(stage.records),
                tuple(record.pass_rate for record in stage.records),
                tuple(str(location) for location in stage.locations),
            )
            for stage in self.stages
        ]

    def report(self) -> ReadReport:
        total = ReadReport()
        for stage in self.stages:
            total.merge(stage.report)
        return total


#: The note counted in a stage's read report for each record an overlong-prompt filter removed (EasyR1's
#: ``filter_overlong_prompts``, verl's and TRL's counterparts).
OVERLONG_NOTE = "dropped_overlong_prompt"


def without_records(data: CurriculumData, dropped: Iterable[int], note: str = OVERLONG_NOTE) -> CurriculumData:
    """``data`` minus the records at the global indices ``dropped``; each stage's report counts them under ``note``.

    The global index space is recomputed (offsets shift), so a plan must be built on the result.
    """
    gone = set(dropped)
    if not gone:
        return data
    if min(gone) < 0 or max(gone) >= len(data):
        raise IndexError(f"indices to drop must lie in 0..{len(data) - 1}")
    stages = []
    offset = 0
    for stage in data.stages:
        keep = [i for i in range(len(stage.records)) if stage.offset + i not in gone]
        removed = len(stage.records) - len(keep)
        report = stage.report
        if removed:
            report = ReadReport(
                rows_read=report.rows_read,
                rows_kept=report.rows_kept - removed,
                issues=list(report.issues),
                notes=Counter(report.notes),
            )
            report.notes[note] += removed
        stages.append(
            dataclasses.replace(
                stage,
                records=tuple(stage.records[i] for i in keep),
                locations=tuple(stage.locations[i] for i in keep),
                report=report,
                offset=offset,
            )
        )
        offset += len(keep)
    return CurriculumData(tuple(stages))


def expand_train_files(stage: StageSpec, *, base_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files of a stage: globs expanded (sorted), relative paths resolved against ``base_dir``."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    files: list[Path] = []
    for position, entry in enumerate(stage.train_files):
        key = f"curriculum.stages[{stage.index}].train_files[{position}]"
        pattern = Path(os.path.expanduser(entry))
        pattern = pattern if pattern.is_absolute() else base / pattern
        if _GLOB_CHARS & set(entry):
            matches = sorted(Path(match) for match in glob.glob(str(pattern), recursive=True) if Path(match).is_file())
            if not matches:
                raise DataFileError(f"{key}: {entry!r} matches no file (looked in {pattern.parent})")
            files += matches
        else:
            if not pattern.is_file():
                raise DataFileError(f"{key}: {entry!r}: no such file ({pattern})")
            files.append(pattern)
    return files


def load_curriculum_data(
    spec: CurriculumSpec,
    *,
    strict: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    image_checks: ImageChecks | None = None,
) -> CurriculumData:
    """Read and validate every stage's files. Strict mode raises one :class:`RecordValidationError` holding the
    issues of *all* stages; lenient mode keeps the good rows (see each stage's ``report``). ``check_images``:
    each image is checked (inside its root, present, within a pixel limit, decodes: ``image_checks``).
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    stages: list[StageRecords] = []
    offset = 0
    for stage in spec.stages:
        files = expand_train_files(stage, base_dir=base)
        image_root = None
        if stage.image_root is not None:
            image_root = Path(os.path.expanduser(stage.image_root))
            image_root = image_root if image_root.is_absolute() else base / image_root
            if not image_root.is_dir():
                raise DataFileError(
                    f"curriculum.stages[{stage.index}].image_root: {stage.image_root!r}: no such directory ({image_root})"
                )
        result = read_records(
            files,
            image_root=image_root,
            capability=stage.capability,
            strict=False,
            check_images=check_images,
            image_checks=image_checks,
        )
        stages.append(
            StageRecords(
                stage=stage,
                files=tuple(files),
                image_root=image_root,
                records=tuple(result.records),
                locations=tuple(result.locations),
                report=result.report,
                offset=offset,
            )
        )
        offset += len(result.records)
    data = CurriculumData(tuple(stages))
    issues = [issue for stage in stages for issue in stage.report.issues]
    if strict and issues:
        raise RecordValidationError(issues, data.report())
    for stage_records in stages:
        if not stage_records.records:
            stage = stage_records.stage
            read = stage_records.report.rows_read
            why = "they hold no rows" if read == 0 else f"all {read} rows were skipped as bad"
            raise DataFileError(
                f"stage {stage.name!r} has no records: {why} (curriculum.stages[{stage.index}].train_files: "
                f"{', '.join(str(path) for path in stage_records.files)})"
            )
    return data


def name_warnings(spec: CurriculumSpec, data: CurriculumData) -> list[str]:
    """Stage names and capabilities that look like typos: a capability that none of the stage's rows carries (the
    stage's capability selects its ``capability_overrides`` and names its metrics), and ``capability_overrides``
    that apply to no stage (a backbone's knobs for a stage the curriculum skips are fine, hence a warning)."""
    warnings = []
    if spec.mode is not Mode.merged:
        for stage_records in data.stages:
            stage = stage_records.stage
            carried = sorted({record.capability for record in stage_records.records})
            if carried and stage.capability not in carried:
                key = "capability" if stage.capability != stage.name else "name"
                warnings.append(
                    f"stage {stage.name!r} has capability {stage.capability!r} but its rows carry "
                    f"{', '.join(map(repr, carried))}: a typo in curriculum.stages[{stage.index}].{key}?"
                )
    warnings += [
        f"curriculum.capability_overrides.{name} applies to no stage"
        + (" (merged mode)" if spec.mode is Mode.merged else "")
        for name in spec.unused_capability_overrides()
    ]
    return warnings


def plan_curriculum(
    spec: CurriculumSpec,
    *,
    strict: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    image_checks: ImageChecks | None = None,
) -> tuple[CurriculumData, Plan]:
    """Load the data of ``spec`` and build its plan: what ``vlmcc plan`` and every backend's launcher do."""
    data = load_curriculum_data(
        spec, strict=strict, base_dir=base_dir, check_images=check_images, image_checks=image_checks
    )
    plan = build_plan(spec, data.stage_data())
    warnings = name_warnings(spec, data)
    if warnings and spec.strict:
        raise PlanError(f"{warnings[0]} (curriculum.strict is true; {len(warnings)} warning(s) in all)")
    return data, dataclasses.replace(plan, notes=(*plan.notes, *(f"warning: {w}" for w in warnings)))

"""The curriculum spec: the ``curriculum:`` config block, parsed and validated into frozen values.

.. code-block:: yaml

    curriculum:
      mode: staged            # staged | merged | stitched_replay
      batch_size: 512         # prompts per training step (the rollout batch)
      seed: 1                 # 0 <= seed < 2**32 (numpy's seed range)
      strict: false           # true: a stage name/capability that looks like a typo is an error, not a warning
      order: shuffle          # default order of every stage; in merged mode, the order of the pool
      overrides: {}           # run-wide layer under every stage (merged: the only layer)
      capability_overrides: {}  # capability -> layer, e.g. a backbone's damped text-reasoning knobs
      stages:
        - name: perception
          capability: perception   # default: the name
          train_files: [path/or/glob.jsonl]
          image_root: path         # default: each data file's directory
          epochs: 16               # or steps: N (exactly one)
          order: shuffle           # shuffle | easy_to_hard | hard_to_easy | file
          overrides: {}

Modes:

* ``staged``: the stages in declaration order, each for its own epochs (or steps); a stage's epochs are expanded
  inside it, so the run never returns to an earlier stage.
* ``merged``: the paper's baseline (Sec. 3.2.2): every stage's data pooled and ordered by ``curriculum.order``,
  trained for the same total number of steps as the staged plan of the same stages. Only the run-wide layer
  applies (there are no stages to switch between), so stage ``overrides`` and stage ``order`` are errors.
* ``stitched_replay``: the reference code's pre-stitched single file (stage 1 rows, then stage 2, then stage 3,
  loaded with ``data.shuffle=false`` for ``total_epochs``): every one of ``curriculum.epochs`` passes replays all
  stages in order. Stage ``epochs``/``steps`` are errors here.

Errors are :class:`SpecError` naming the key path (``curriculum.stages[1].epochs``); unknown keys are errors with
a suggestion. Parsing touches no file: paths stay as written and are resolved when data is loaded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vlm_capcurriculum.curriculum.overrides import NO_OVERRIDES, OverrideError, Overrides, OverridesConfig


class Mode(str, Enum):
    staged = "staged"
    merged = "merged"
    stitched_replay = "stitched_replay"


class Order(str, Enum):
    """Order of samples inside a stage (or the merged pool). ``easy_to_hard`` sorts by pass rate, highest first."""

    shuffle = "shuffle"
    easy_to_hard = "easy_to_hard"
    hard_to_easy = "hard_to_easy"
    file = "file"

    @property
    def needs_pass_rate(self) -> bool:
        return self in (Order.easy_to_hard, Order.hard_to_easy)


class SpecError(ValueError):
    """An invalid curriculum spec; ``path`` is the key path of the offending value."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


# --------------------------------------------------------------------------------------------------- schema


@dataclass
class StageConfig:
    """OmegaConf schema of one entry of ``curriculum.stages``."""

    name: str = MISSING
    capability: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    train_files: list[str] = MISSING
    image_root: Optional[str] = None  # noqa: UP045
    epochs: Optional[int] = None  # noqa: UP045
    steps: Optional[int] = None  # noqa: UP045
    order: Optional[Order] = None  # noqa: UP045
    overrides: OverridesConfig = field(default_factory=OverridesConfig)


@dataclass
class CurriculumConfig:
    """OmegaConf schema of the ``curriculum:`` block (stages are checked one by one, see :func:`parse_curriculum`)."""

    mode: Mode = Mode.staged
    batch_size: int = MISSING
    seed: int = 1
    strict: bool = False
    order: Order = Order.shuffle
    epochs: Optional[int] = None  # noqa: UP045
    overrides: OverridesConfig = field(default_factory=OverridesConfig)
    capability_overrides: dict[str, OverridesConfig] = field(default_factory=dict)
    stages: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class StageSpec:
    """One validated stage. ``train_files`` are paths or globs as written; ``order`` is already defaulted."""

    index: int
    name: str
    capability: str
    train_files: tuple[str, ...]
    image_root: str | None
    epochs: int | None
    steps: int | None
    order: Order
    overrides: Overrides = NO_OVERRIDES


@dataclass(frozen=True)
class CurriculumSpec:
    """A validated curriculum. Build it with :func:`parse_curriculum` (or :meth:`from_config`)."""

    mode: Mode
    batch_size: int
    seed: int
    order: Order
    stages: tuple[StageSpec, ...]
    overrides: Overrides = NO_OVERRIDES
    capability_overrides: Mapping[str, Overrides] = field(default_factory=dict)
    epochs: int | None = None  # passes over all stages, stitched_replay only
    strict: bool = False  # name/capability warnings (curriculum.data.name_warnings) are errors

    def stage_state(self, stage: StageSpec) -> Overrides:
        """The complete state of ``stage``: run-wide, then its capability's layer, then its own overrides."""
        if self.mode is Mode.merged:
            return self.overrides
        return self.overrides.layered(self.capability_overrides.get(stage.capability, NO_OVERRIDES), stage.overrides)

    def unused_capability_overrides(self) -> list[str]:
        """Capabilities given overrides that no stage trains (harmless: a backbone's knobs for a skipped stage)."""
        if self.mode is Mode.merged:
            return sorted(self.capability_overrides)
        used = {stage.capability for stage in self.stages}
        return sorted(set(self.capability_overrides) - used)


# --------------------------------------------------------------------------------------------------- parsing

_ENV_MISSING = re.compile(r"Environment variable '([^']+)' not found")


def _plain(config: DictConfig | ListConfig | Mapping[str, Any], path: str) -> Any:
    """Resolve interpolations (against the whole config) into plain containers, with readable errors."""
    if not isinstance(config, (DictConfig, ListConfig)):
        return config
    try:
        return OmegaConf.to_container(config, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or path
        message = str(err).splitlines()[0]
        env = _ENV_MISSING.search(message)
        if env:
            message = f"environment variable {env.group(1)} is not set"
        elif "Missing mandatory value" in message:
            message = "missing mandatory value (???)"
        raise SpecError(str(key), message) from None


def _check_keys(data: Any, schema: type, path: str) -> None:
    """Unknown keys are errors, with the closest known key as a suggestion."""
    if not isinstance(data, Mapping):
        raise SpecError(path, f"must be a mapping, got {type(data).__name__} {data!r}")
    known = [f.name for f in fields(schema)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1) or [k for k in known if k.startswith(str(key))][:1]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"{path}.{key}", f"unknown key{hint} (allowed: {', '.join(known)})")
    if "overrides" in known and data.get("overrides") is not None:
        _check_keys(data["overrides"], OverridesConfig, f"{path}.overrides")


def _structured(schema: type, data: Mapping[str, Any], path: str) -> Any:
    """Type-check ``data`` against ``schema`` with OmegaConf and return the schema instance."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), data)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        message = str(err).splitlines()[0]
        if "Missing mandatory value" in message or "missing mandatory value" in message:
            message = "missing (required)"
        raise SpecError(f"{path}.{key}" if key else path, message) from None


def _overrides(config: OverridesConfig, path: str) -> Overrides:
    try:
        return Overrides(**vars(config))
    except OverrideError as err:
        raise SpecError(f"{path}.{err.field}", str(err).split(": ", 1)[1]) from None


def parse_curriculum(config: DictConfig | Mapping[str, Any], *, path: str = "curriculum") -> CurriculumSpec:
    """Validate a ``curriculum:`` block (a DictConfig node of a composed config, or a plain mapping)."""
    data = _plain(config, path)
    if data is None:
        raise SpecError(path, "missing: the config has no curriculum block")
    if isinstance(data, str):
        raise SpecError(
            path,
            f"is the string {data!r}, not a curriculum block: an override {path}={data} selects a config group "
            f"only in a recipe with a {path}/ group directory (to change the mode: {path}.mode={data})",
        )
    _check_keys(data, CurriculumConfig, path)
    capability_layers = data.get("capability_overrides") or {}
    if not isinstance(capability_layers, Mapping):
        raise SpecError(f"{path}.capability_overrides", "must map capability names to overrides")
    for capability, layer in capability_layers.items():
        _check_keys(layer or {}, OverridesConfig, f"{path}.capability_overrides.{capability}")
    raw_stages = data.get("stages")
    top = _structured(CurriculumConfig, {k: v for k, v in data.items() if k != "stages"}, path)
    if raw_stages is None:
        raise SpecError(f"{path}.stages", "missing (required): the list of stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise SpecError(f"{path}.stages", "must be a non-empty list of stages")

    mode: Mode = top.mode
    if top.batch_size < 1:
        raise SpecError(f"{path}.batch_size", f"must be >= 1, got {top.batch_size}")
    if not 0 <= top.seed < 2**32:  # numpy's (and so every framework's) seed range: fail here, not in train
        raise SpecError(f"{path}.seed", f"must be in 0 .. 2**32 - 1 (4294967295), got {top.seed}")
    if mode is Mode.stitched_replay:
        if top.epochs is None or top.epochs < 1:
            raise SpecError(f"{path}.epochs", "stitched_replay needs the number of passes over all stages (>= 1)")
    elif top.epochs is not None:
        raise SpecError(
            f"{path}.epochs",
            f"only used by mode stitched_replay; in {mode.value} mode give each stage its epochs or steps",
        )

    stages: list[StageSpec] = []
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_stages):
        stage_path = f"{path}.stages[{index}]"
        _check_keys(raw, StageConfig, stage_path)
        config_stage: StageConfig = _structured(StageConfig, raw, stage_path)
        stages.append(_stage(config_stage, index, stage_path, top, raw))
        if config_stage.name in names:
            raise SpecError(
                f"{stage_path}.name",
                f"duplicate stage name {config_stage.name!r} (also stages[{names[config_stage.name]}])",
            )
        names[config_stage.name] = index

    return CurriculumSpec(
        mode=mode,
        batch_size=top.batch_size,
        seed=top.seed,
        order=top.order,
        stages=tuple(stages),
        overrides=_overrides(top.overrides, f"{path}.overrides"),
        capability_overrides={
            name: _overrides(layer, f"{path}.capability_overrides.{name}")
            for name, layer in top.capability_overrides.items()
        },
        epochs=top.epochs,
        strict=top.strict,
    )


def _stage(config: StageConfig, index: int, path: str, top: CurriculumConfig, raw: Mapping[str, Any]) -> StageSpec:
    if not config.name.strip():
        raise SpecError(f"{path}.name", "must be a non-empty string")
    if not config.train_files or not all(isinstance(f, str) and f.strip() for f in config.train_files):
        raise SpecError(f"{path}.train_files", "must be a non-empty list of paths or globs")
    overrides = _overrides(config.overrides, f"{path}.overrides")
    mode: Mode = top.mode
    if mode is Mode.stitched_replay:
        for key in ("epochs", "steps"):
            if getattr(config, key) is not None:
                raise SpecError(f"{path}.{key}", "not used in stitched_replay mode: curriculum.epochs sets the passes")
    else:
        if (config.epochs is None) == (config.steps is None):
            raise SpecError(path, "give exactly one of epochs or steps")
        for key in ("epochs", "steps"):
            value = getattr(config, key)
            if value is not None and value < 1:
                raise SpecError(f"{path}.{key}", f"must be >= 1, got {value}")
    if mode is Mode.merged:
        if config.order is not None:
            raise SpecError(f"{path}.order", "merged mode orders the pooled data: set curriculum.order instead")
        if overrides != NO_OVERRIDES:
            raise SpecError(
                f"{path}.overrides",
                "merged mode has a single phase: put its overrides in curriculum.overrides",
            )
    return StageSpec(
        index=index,
        name=config.name,
        capability=config.capability or config.name,
        train_files=tuple(config.train_files),
        image_root=config.image_root,
        epochs=config.epochs,
        steps=config.steps,
        order=config.order or top.order,
        overrides=overrides,
    )

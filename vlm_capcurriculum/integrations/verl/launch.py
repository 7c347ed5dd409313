"""``vlmcc train --config recipes/config.yaml backend=verl``: run a recipe on upstream verl (>= 0.9.1).

:func:`launch` (``backend.launcher``) writes the stages' records as verl parquet and the curriculum as a Hydra config
group option in the run's output directory, composes verl's config through our ``capcurriculum_trainer``, checks it
(verl's ``validate_config``, run shape, overrides, training order), drops over-long prompts (:mod:`.overlong`),
prints the plan and verl's own command line (``verl.sh``), then starts ``run_ppo`` (not with ``dry_run``). Nothing
before ``run_ppo`` starts Ray or needs a GPU. Steps: ``docs/integrations/verl.md`` ("How the pieces connect").
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import CurriculumData, Plan, PlanError, SpecError, parse_curriculum, plan_curriculum
from vlm_capcurriculum.launch import LaunchError
from vlm_capcurriculum.schema import SUPPORTED_SUFFIXES, DataFileError, RecordValidationError, read_records

from .hydra_args import (
    OverrideValueError,
    escape_interpolations,
    flatten_overrides,
    format_overrides,
    override_value,
)
from .internvl import check_internvl, is_internvl, processor_kwargs, tiling_of
from .planning import (
    absolute_spec_paths,
    file_tag,
    spec_block,
    training_order,
)
from .support import UnsupportedOverrideError, check_plan
from .writer import VerlDataError, write_verl_parquet

CONFIG_MODULE = "vlm_capcurriculum.integrations.verl.config"
#: ``backend.device``: ``cuda`` (verl's GPUs) or ``cpu`` (smoke tests: :mod:`.cpu`).
DEVICES = ("cuda", "cpu")


def cpu_overrides(ranks: int) -> dict[str, Any]:
    """verl keys of a ``backend.device=cpu`` run, after the recipe's ``backend.overrides``."""
    return {
        "trainer.device": "cpu",
        "trainer.n_gpus_per_node": ranks,
        "trainer.nnodes": 1,
        "actor_rollout_ref.rollout.name": "hf",
        "actor_rollout_ref.actor.strategy": "fsdp2",
        "actor_rollout_ref.ref.strategy": "fsdp2",
        "actor_rollout_ref.actor.fsdp_config.dtype": "float32",
        "actor_rollout_ref.ref.fsdp_config.dtype": "float32",
        "actor_rollout_ref.actor.use_torch_compile": False,
        "actor_rollout_ref.ref.use_torch_compile": False,
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile": False,
        "actor_rollout_ref.ref.fsdp_config.use_torch_compile": False,
        "+actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
        "actor_rollout_ref.model.enable_gradient_checkpointing": False,
        "actor_rollout_ref.model.use_remove_padding": False,
        "actor_rollout_ref.rollout.agent.num_workers": 1,
        "reward.num_workers": 1,
        "data.dataloader_num_workers": 0,
        "transfer_queue.backend.SimpleStorage.num_data_storage_units": 1,
    }


CONFIG_NAME = "capcurriculum_trainer"
#: The option of the ``curriculum`` config group the launcher writes (``<output_dir>/config/curriculum/run.yaml``).
CURRICULUM_OPTION = "run"

_USER_ERRORS = (
    SpecError,
    PlanError,
    DataFileError,
    RecordValidationError,
    VerlDataError,
    ConfigError,
    UnsupportedOverrideError,
    OverrideValueError,
)


@dataclass(frozen=True)
class VerlRun:
    """Everything a verl run of a recipe is made of, prepared and checked (see the module docstring)."""

    device: str
    output_dir: Path
    data: CurriculumData
    plan: Plan
    train_files: tuple[Path, ...]
    val_files: tuple[Path, ...]
    config_dir: Path
    overrides: tuple[str, ...]
    config: DictConfig

    def command(self) -> list[str]:
        """verl's own command line for this run (extra verl overrides can be appended)."""
        return [
            "python",
            "-m",
            "verl.trainer.main_ppo",
            "--config-path",
            f"pkg://{CONFIG_MODULE}",
            "--config-name",
            CONFIG_NAME,
            "--config-dir",
            str(self.config_dir),
            *self.overrides,
        ]


def plan_id(plan: Plan) -> str:
    """A short digest of the plan (stages, overrides, exact order): the default run directory's suffix, so that
    the same recipe resumes into the same directory and a different curriculum does not."""
    text = json.dumps(plan.to_json(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _output_dir(recipe: DictConfig, plan: Plan) -> Path:
    configured = recipe.backend.get("output_dir")
    if configured:
        return Path(os.path.expanduser(str(configured))).absolute()
    model = OmegaConf.select(recipe, "model.name", default="model")
    return Path("outputs", "verl", f"{model}_{plan.mode.value}_{plan_id(plan)}").absolute()


def write_stage_files(data: CurriculumData, directory: Path, *, embed_images: bool) -> list[Path]:
    """One parquet file per curriculum stage, in stage order: together the plan's global index space."""
    files = []
    for position, stage in enumerate(data.stages):
        rows = [
            {**record.to_dict(), "images": [str(path) for path in stage.image_paths(index)]}
            for index, record in enumerate(stage.records)
        ]
        path = directory / f"train_{file_tag(position, stage.stage.name)}.parquet"
        write_verl_parquet(rows, path, image_root="/", embed_images=embed_images, origin=f"stage {stage.stage.name!r}")
        files.append(path)
    return files


def write_val_files(val_files: Sequence[str], directory: Path, *, embed_images: bool) -> list[Path]:
    """Validation files in our record format (JSONL, JSON or parquet rows) as verl parquet."""
    written = []
    for position, entry in enumerate(val_files):
        source = Path(os.path.expanduser(str(entry)))
        if not source.is_file() or not str(source).endswith(SUPPORTED_SUFFIXES):
            raise LaunchError(
                f"data.val_files[{position}]: {entry!r} is not a local data file ({', '.join(SUPPORTED_SUFFIXES)}); "
                "verl reads local files: point data.val_files (for data=paper: VLMCC_STAGE3_VAL) at one"
            )
        result = read_records(source, strict=True)
        rows = [
            {**record.to_dict(), "images": [str(location.path.parent.absolute() / image) for image in record.images]}
            for record, location in zip(result.records, result.locations, strict=True)
        ]
        path = directory / f"val_{file_tag(position, source.stem)}.parquet"
        write_verl_parquet(rows, path, image_root="/", embed_images=embed_images, origin=f"data.val_files[{position}]")
        written.append(path)
    return written


def write_curriculum_option(
    directory: Path, curriculum: dict[str, Any], train_files: Sequence[Path], val_files: Sequence[Path], note: str
) -> Path:
    """``<directory>/curriculum/run.yaml``: the curriculum spec and the files that hold its records, as a Hydra
    config group option (``--config-dir <directory> curriculum=run``)."""
    content = {
        "curriculum": curriculum,
        "data": {"train_files": [str(path) for path in train_files], "val_files": [str(path) for path in val_files]},
    }
    path = directory / "curriculum" / f"{CURRICULUM_OPTION}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# @package _global_\n# {note}\n"
    path.write_text(header + yaml.safe_dump(escape_interpolations(content), sort_keys=False, allow_unicode=True))
    return path


@contextmanager
def _hydra_context() -> Iterator[None]:
    """Hydra's ``initialize_config_module`` for our config, also inside a running Hydra app (state restored)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    outer = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
            yield
    finally:
        GlobalHydra.instance().hydra = outer


def compose_verl_config(config_dir: Path, overrides: Sequence[str]) -> DictConfig:
    """verl's config as ``main_ppo`` composes it with ``--config-dir config_dir`` and ``overrides``."""
    from hydra import compose
    from hydra.errors import HydraException

    packaged = yaml.safe_load(resources.files(CONFIG_MODULE).joinpath(f"{CONFIG_NAME}.yaml").read_text())
    search_path = [*packaged["hydra"]["searchpath"], f"file://{config_dir}"]
    search = f"hydra.searchpath={override_value(search_path)}"
    try:
        with _hydra_context():
            return compose(CONFIG_NAME, overrides=[search, *overrides])
    except (HydraException, OmegaConfBaseException) as error:
        message = " ".join(str(error).split("Config search path:")[0].split())
        raise LaunchError(f"composing verl's config: {message} (check backend.overrides)") from error


def check_verl_config(config: DictConfig, plan: Plan) -> None:
    """verl's own validation (as ``main_ppo`` runs it), then ours: run shape, stage overrides, reward function,
    training order."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device
    from verl.utils.import_utils import load_extern_object

    if config.trainer.get("device") != "cpu":  # on the CPU device verl's platform is ours (VERL_PLATFORM): "cpu"
        auto_set_device(config)
    try:
        validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    except (AssertionError, ValueError, TypeError) as error:
        raise LaunchError(f"verl's config validation: {error}") from error
    try:
        resolved = OmegaConf.to_container(config, resolve=True)  # every interpolation resolves (TaskRunnerV1 does)
    except OmegaConfBaseException as error:
        raise LaunchError(f"verl's config does not resolve: {' '.join(str(error).split())}") from error
    check_plan(plan, config)
    reward = config.reward.custom_reward_function
    if reward.get("path"):  # loaded as verl's reward workers will load it; none: verl's default by data_source
        try:
            function = load_extern_object(reward.path, reward.name)
        except Exception as error:
            raise LaunchError(
                f"reward.custom_reward_function {reward.path}:{reward.name} does not load: {error}"
            ) from error
        if not callable(function):
            raise LaunchError(f"reward.custom_reward_function {reward.path}:{reward.name} is not callable")
    files = [str(path) for path in resolved["data"]["train_files"]]
    if tuple(training_order(config.curriculum, files)) != plan.indices:
        raise LaunchError("the training order planned inside verl differs from the launcher's plan (please report)")


def prepare_run(
    recipe: DictConfig,
    *,
    measure_prompts: bool = False,
    kept: tuple[dict[str, Any], Path] | None = None,
) -> VerlRun:
    """Everything before ``run_ppo`` (module docstring); raises ``LaunchError`` (one line) for anything the user can fix.
    ``kept`` (curriculum block, output directory): the run written again without its over-long prompts."""
    try:
        spec = parse_curriculum(kept[0] if kept else recipe.get("curriculum"))
        data, plan = plan_curriculum(spec)
        output_dir = kept[1] if kept else _output_dir(recipe, plan)
        curriculum = kept[0] if kept else absolute_spec_paths(spec_block(recipe.curriculum))
        backend = recipe.backend
        embed_images = bool(backend.get("embed_images", False))
        train_files = write_stage_files(data, output_dir / "data", embed_images=embed_images)
        val_entries = OmegaConf.select(recipe, "data.val_files", default=None) or []
        if not val_entries:
            raise LaunchError(
                "data.val_files is empty: verl needs validation data (trainer.val_before_train and the curriculum's "
                "validate action use it)"
            )
        val_files = write_val_files(list(val_entries), output_dir / "data", embed_images=embed_images)
        config_dir = output_dir / "config"
        write_curriculum_option(
            config_dir,
            curriculum,
            train_files,
            val_files,
            note=f"written by `vlmcc train ... backend=verl` (plan {plan_id(plan)}, {plan.total_steps} steps)",
        )
        device = str(backend.get("device") or "cuda").lower()
        if device not in DEVICES:
            raise LaunchError(f"backend.device: {device!r} is not one of {', '.join(DEVICES)}")
        from vlm_capcurriculum.models.tiny import BASE_MODEL_DIR, tiny_family

        model_path = str(OmegaConf.select(recipe, "model.path", default="") or "")
        if tiny_family(model_path) is not None:  # prepare_model builds it there
            model_path = str(output_dir / BASE_MODEL_DIR)
        leaves = {
            "trainer.project_name": "vlm-capcurriculum",
            "trainer.experiment_name": output_dir.name,
            "trainer.default_local_dir": str(output_dir / "checkpoints"),
            **flatten_overrides(OmegaConf.to_container(backend.get("overrides") or {}, resolve=True)),
            "actor_rollout_ref.model.path": model_path,
            "curriculum.output_dir": str(output_dir),
        }
        if device == "cpu":
            leaves.update(cpu_overrides(int(backend.get("cpu_ranks") or 1)))
        overrides = (f"curriculum={CURRICULUM_OPTION}", *format_overrides(leaves))
        config = compose_verl_config(config_dir, overrides)
        family = OmegaConf.select(recipe, "model.family", default=None)
        if is_internvl(config, family):  # InternVL's processor tiles: the pixel bounds become a tile cap
            bounds = OmegaConf.to_container(config.data.mm_processor_kwargs, resolve=True)
            tiling = tiling_of(str(OmegaConf.select(recipe, "model.path", default="") or model_path))
            kwargs = processor_kwargs(bounds, tiling)  # type: ignore[arg-type]
            if kwargs != bounds:
                leaves = {key: value for key, value in leaves.items() if not key.startswith("data.mm_processor_kwargs")}
                replaced = ("~data.mm_processor_kwargs", f"+data.mm_processor_kwargs={override_value(kwargs)}")
                overrides = (f"curriculum={CURRICULUM_OPTION}", *format_overrides(leaves), *replaced)
                config = compose_verl_config(config_dir, overrides)
        if measure_prompts and kept is None and recipe.backend.get("drop_overlong_prompts", False):
            from vlm_capcurriculum.curriculum.data import OVERLONG_NOTE, without_records

            from .overlong import overlong_rows, write_kept_records

            dropped = overlong_rows(config, train_files)
            if dropped:
                data = without_records(data, dropped)
                counts = ", ".join(
                    f"{s.stage.name} {s.report.notes.get(OVERLONG_NOTE, 0)}" for s in data.stages
                )
                print(
                    f"verl: dropped {len(dropped)} training prompts longer than data.max_prompt_length="
                    f"{config.data.max_prompt_length} tokens ({counts}; EasyR1's filter_overlong_prompts)"
                )
                block = write_kept_records(data, curriculum, output_dir / "data")
                return prepare_run(recipe, kept=(block, output_dir))
        check_verl_config(config, plan)
        check_internvl(config, family)
    except _USER_ERRORS as error:
        raise LaunchError(f"backend verl: {error}") from error
    run = VerlRun(
        device=device,
        output_dir=output_dir,
        data=data,
        plan=plan,
        train_files=tuple(train_files),
        val_files=tuple(val_files),
        config_dir=config_dir,
        overrides=overrides,
        config=config,
    )
    script = output_dir / "verl.sh"
    script.write_text(
        "#!/usr/bin/env bash\n# verl's own command line for this run; append verl overrides as arguments.\n"
        f'exec {shlex.join(run.command())} "$@"\n'
    )
    script.chmod(0o755)
    return run


def print_run(run: VerlRun) -> None:
    from vlm_capcurriculum.curriculum.plan_table import print_plan

    print_plan(run.plan, run.data)
    print(f"verl run in {run.output_dir}")
    for path in run.train_files + run.val_files:
        print(f"  {path.relative_to(run.output_dir)}: {pq.ParquetFile(path).metadata.num_rows} rows")
    print(f"  checkpoints: {run.config.trainer.default_local_dir}")
    print(f"verl's own command for this run ({run.output_dir / 'verl.sh'}):")
    print("  " + shlex.join(run.command()))
    sys.stdout.flush()


def run_verl(config: DictConfig, *, device: str = "cuda") -> None:
    """What ``verl.trainer.main_ppo.main`` does after composing and validating: Ray, then ``TaskRunnerV1``. On the
    CPU device, first the environment every Ray process inherits and a local Ray with one logical GPU per rank."""
    if device == "cpu":
        import ray

        from .cpu import PLATFORM_NAME, apply_cpu_patches
        from .plugin import DEVICE_ENV

        ranks = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
        environment = {
            DEVICE_ENV: "cpu",
            "VERL_PLATFORM": PLATFORM_NAME,
            "VERL_ENGINE_DEVICE": "cuda",  # engine registry key only; the engine runs on get_device_name() == "cpu"
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
        }
        os.environ.update(environment)
        apply_cpu_patches()
        if not ray.is_initialized():
            ray.init(
                num_cpus=64,  # logical: verl's many actors each ask for one; the threads are OMP's (one each)
                num_gpus=ranks,
                include_dashboard=False,
                runtime_env={"env_vars": environment},
            )
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo

    run_ppo(config, task_runner_class=TaskRunnerV1)


def prepare_model(recipe: DictConfig, run: VerlRun) -> None:
    """Build a ``tiny://`` model (with the TRL backend's format warm-start, so rewards are not all 0) before Ray."""
    from vlm_capcurriculum.models.tiny import prepare_tiny_model, tiny_family
    from vlm_capcurriculum.prompts import THINK_BOXED, read_prompt

    family = tiny_family(str(OmegaConf.select(recipe, "model.path", default="") or ""))
    if family is None:
        return
    prepare_tiny_model(
        family,
        run.output_dir,
        seed=int(recipe.model.get("tiny_seed", 0) or 0),
        warm_start_steps=int(recipe.model.get("tiny_warm_start_steps", 0) or 0),
        records=run.data.records,
        image_paths=run.data.image_paths,
        template=read_prompt(str(recipe.backend.get("format_prompt") or THINK_BOXED)),
    )


def launch(config: DictConfig, *, dry_run: bool) -> int:
    """The verl backend's launcher (``vlm_capcurriculum.launch.Launcher``)."""
    run = prepare_run(config, measure_prompts=False)
    if not dry_run:
        prepare_model(config, run)  # a tiny:// model must exist before its processor measures the prompts
        run = prepare_run(config, measure_prompts=True)
    print_run(run)
    if dry_run:
        return 0
    try:
        run_verl(run.config, device=run.device)
    except KeyboardInterrupt:
        print(f"\nverl: interrupted; {_resume_hint(run)}", file=sys.stderr, flush=True)
        return 130
    _print_finished(run)
    return 0


def _resume_hint(run: VerlRun) -> str:
    """What running the same command again does after an interruption (``trainer.resume_mode=auto``)."""
    from vlm_capcurriculum.checkpoints import newest_complete, step_directories

    root = Path(os.getcwd()) / str(run.config.trainer.default_local_dir)  # as verl resolves it (absolute stays)
    found = newest_complete(step_directories(root, r"global_step_(\d+)"))
    if found is None:
        return "run the same command again to start over (no checkpoint was written yet)"
    return f"run the same command again to resume from checkpoint {found}"


def _print_finished(run: VerlRun) -> None:
    """One line per stage of the summary and where the run's files are (as the TRL backend ends)."""
    from vlm_capcurriculum.curriculum.run_layout import STAGES_DIR, STEPS_FILE, SUMMARY_FILE

    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    summary = run.output_dir / SUMMARY_FILE
    stages = json.loads(summary.read_text()).get("stages", []) if summary.is_file() else []
    for entry in stages:
        validation = (entry.get("validation") or {}).get("val/accuracy")
        print(
            f"  stage {entry['stage']} {entry['name']}: steps {entry['first_step']}-{entry['last_step']} "
            f"({entry['steps']}/{entry['planned_steps']}), reward {number(entry.get('reward_start'))} -> "
            f"{number(entry.get('reward_end'))}, accuracy {number(entry.get('accuracy'))}, "
            f"val accuracy {number(validation)}"
        )
    print(
        f"verl: run complete; per-stage summary in {summary}, one line per step in {run.output_dir / STEPS_FILE}, "
        f"stage models in {run.output_dir / STAGES_DIR}"
    )

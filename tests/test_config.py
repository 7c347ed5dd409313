from __future__ import annotations

from pathlib import Path

import pytest

from vlm_capcurriculum.config import ConfigError, load_config


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    (tmp_path / "curriculum").mkdir()
    (tmp_path / "curriculum" / "a.yaml").write_text("batch_size: 8\nmode: staged\n")
    (tmp_path / "curriculum" / "b.yaml").write_text("batch_size: 8\nmode: merged\n")
    (tmp_path / "run.yaml").write_text("defaults:\n  - _self_\n  - curriculum: a\nx: 1\n")
    return tmp_path


def test_composes_groups_and_overrides(recipe_dir: Path) -> None:
    config = load_config(recipe_dir / "run.yaml", ["curriculum=b", "curriculum.batch_size=4", "+extra.k=v"])
    assert (config.curriculum.mode, config.curriculum.batch_size, config.extra.k, config.x) == ("merged", 4, "v", 1)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("run.yaml", ["curriculum=zzz"], "Could not find 'curriculum/zzz' Available options in 'curriculum': a b"),
        ("run.yaml", ["curriculum.nope=1"], "Could not override 'curriculum.nope'. To append to your config use +"),
        ("run.yaml", ["=="], "Error parsing override '=='"),
        ("broken.yaml", [], "while parsing a flow sequence"),
        ("run.yml", [], "must end in .yaml"),
        ("absent.yaml", [], "no such config file"),
    ],
)
def test_errors_are_config_errors_naming_the_file(recipe_dir: Path, name, overrides, message) -> None:
    (recipe_dir / "broken.yaml").write_text("a: [1\n")
    (recipe_dir / "run.yml").write_text("a: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(recipe_dir / name, overrides)
    assert str(err.value).startswith(str(recipe_dir / name) + ": ")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_works_inside_a_running_hydra_app_and_restores_it(recipe_dir: Path, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "app.yaml").write_text("app: 1\n")
    with initialize_config_dir(config_dir=str(outer), version_base="1.3"):
        before = GlobalHydra.instance().hydra
        assert load_config(recipe_dir / "run.yaml").curriculum.mode == "staged"
        assert GlobalHydra.instance().hydra is before
        assert compose("app").app == 1
    assert not GlobalHydra.instance().is_initialized()


def test_an_override_of_a_library_stage_by_index_changes_that_stage(recipe_dir: Path) -> None:
    (recipe_dir / "curriculum" / "c.yaml").write_text("batch_size: 8\nstages: ['${stages.b}', {name: x, epochs: 1}]\n")
    (recipe_dir / "run.yaml").write_text(
        "defaults:\n  - _self_\n  - curriculum: a\nstages:\n  a: {name: a, epochs: 1}\n  b: {name: b, epochs: 1}\n"
    )
    overrides = ["curriculum=c", "curriculum.stages.0.epochs=3", "+curriculum.stages.0.steps=2"]
    config = load_config(recipe_dir / "run.yaml", [*overrides, "curriculum.stages.1.epochs=4"])
    assert [dict(stage) for stage in config.curriculum.stages] == [
        {"name": "b", "epochs": 3, "steps": 2},
        {"name": "x", "epochs": 4},
    ]
    assert config.stages.a.epochs == 1
    with pytest.raises(ConfigError, match=r"Could not override 'curriculum\.stages\.1\.nope'"):
        load_config(recipe_dir / "run.yaml", ["curriculum=c", "curriculum.stages.1.nope=1"])

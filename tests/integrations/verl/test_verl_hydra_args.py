"""Recipe values written as Hydra overrides come back unchanged through Hydra's own override parser and
OmegaConf's resolution (what composing verl's config does with them)."""

from __future__ import annotations

from typing import Any

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from vlm_capcurriculum.integrations.verl.hydra_args import (
    OverrideValueError,
    flatten_overrides,
    format_overrides,
    override_value,
)

PARSER = OverridesParser.create()


def _round_trip(value: Any) -> Any:
    parsed = PARSER.parse_override(f"key={override_value(value)}").value()
    return OmegaConf.to_container(OmegaConf.create({"key": parsed}), resolve=True)["key"]


scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=30)
scalars |= st.floats(allow_nan=False, allow_infinity=False, width=64)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), children, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_values_survive_hydra_parsing_and_resolution(value: Any) -> None:
    assert _round_trip(value) == value


@pytest.mark.parametrize(
    "text",
    [
        "/data/my run, v2/x.parquet",
        "it's",
        "C:\\dir\\",
        "a\\'b",
        "${not.an.interpolation}",
        "??",
        "[1,2]",
        "",
        "1.0",
        "true",
        "null",
        "nan",
        "-3",
        "x=y",
        "a,b",
        "Qwen/Qwen3-VL-8B-Instruct",
        "file:///tmp/x",
    ],
)
def test_awkward_strings(text: str) -> None:
    assert _round_trip(text) == text


def test_plain_strings_stay_bare() -> None:
    assert override_value("Qwen/Qwen3-VL-8B-Instruct") == "Qwen/Qwen3-VL-8B-Instruct"
    assert override_value("/data/x.parquet") == "/data/x.parquet"
    assert override_value("1.0") == "'1.0'" and override_value("null") == "'null'"


def test_nested_and_dotted_keys_give_the_same_overrides() -> None:
    nested = {"data": {"train_batch_size": 8, "mm_processor_kwargs": {}}, "trainer": {"logger": ["console"]}}
    dotted = {"data.train_batch_size": 8, "data.mm_processor_kwargs": {}, "trainer.logger": ["console"]}
    expected = ["data.train_batch_size=8", "data.mm_processor_kwargs={}", "trainer.logger=[console]"]
    assert format_overrides(flatten_overrides(nested)) == format_overrides(flatten_overrides(dotted)) == expected


def test_plus_prefix_reaches_every_leaf() -> None:
    overrides = format_overrides(
        flatten_overrides({"+reward.custom_reward_function.reward_kwargs": {"format_weight": 0.1}})
    )
    assert overrides == ["+reward.custom_reward_function.reward_kwargs.format_weight=0.1"]


@pytest.mark.parametrize(
    "mapping",
    [{"data": {"+x": 1}}, {"a.b": 1, "a": {"b": 2}}, {"bad key": 1}, {"x": [{"bad key": 1}]}, {"x": object()}],
)
def test_unwritable_mappings_are_errors(mapping: dict) -> None:
    with pytest.raises(OverrideValueError):
        format_overrides(flatten_overrides(mapping))

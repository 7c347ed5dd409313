from __future__ import annotations

import pytest

from vlm_capcurriculum.schema import RecordError, SampleRecord
from vlm_capcurriculum.schema.answer import AnswerSpec


def record(**fields) -> SampleRecord:
    base = dict(
        id="r",
        capability="perception",
        problem="<image>Which?",
        images=("x.png",),
        answer="B",
        answer_type="choice",
        choices={"A": "cat", "B": "dog"},
    )
    base.update(fields)
    return SampleRecord(**base)


def test_ground_truth_round_trips_through_answer_spec() -> None:
    rec = record()
    spec = AnswerSpec.parse(rec.ground_truth())
    assert spec == rec.answer_spec()
    assert spec.type == "choice" and spec.choices == {"A": "cat", "B": "dog"} and spec.capability == "perception"


def test_math_record_ground_truth_is_a_json_object_carrying_the_capability() -> None:
    rec = SampleRecord(id="m", capability="text_reasoning", problem="1+1?", answer=" 2 ", answer_type="math")
    assert rec.answer == "2"
    assert AnswerSpec.parse(rec.ground_truth()) == AnswerSpec(answer="2", type="math", capability="text_reasoning")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"answer": ""}, "answer"),
        ({"answer": "C"}, "answer"),  # not among the choices
        ({"answer": "dog"}, "answer"),  # a choice answer must be a letter
        ({"answer_type": "essay"}, "answer_type"),
        ({"problem": "no placeholder"}, "problem"),
        ({"images": ("x.png", "y.png")}, "problem"),
        ({"pass_rate": 1.5}, "pass_rate"),
        ({"pass_rate": float("nan")}, "pass_rate"),
        ({"choices": {"Z": "?"}}, "choices"),
        ({"answer_type": "math", "answer": "3"}, "choices"),  # choices on a non-choice answer
        ({"extra": {"answer": "x"}}, "extra"),
    ],
)
def test_invalid_records_name_the_field(fields, field) -> None:
    with pytest.raises(RecordError) as err:
        record(**fields)
    assert err.value.field == field


def test_to_dict_puts_record_fields_first_then_extras() -> None:
    rec = record(extra={"caption": "a dog"})
    assert list(rec.to_dict())[-2:] == ["source", "caption"]

from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards import AnswerSpec, verify
from vlm_capcurriculum.rewards.verifiers.choice import parse_choice, verify_choice

OPTIONS = {"A": "a red umbrella", "B": "a blue umbrella", "C": "a green car", "D": "1/2"}


@pytest.mark.parametrize(
    "answer",
    ["B", "b", "(B)", "(b)", "[B]", "B.", "B)", "B:", "Option B", "option b", "option (b)", "Choice B", "Answer: B",
     "The answer is (B)", "\\text{B}", "\\textbf{B}", "$B$", "**B**", " B "],
)  # fmt: skip
def test_letter_forms(answer: str) -> None:
    assert parse_choice(answer) == "B"
    assert parse_choice(answer, OPTIONS) == "B"


@pytest.mark.parametrize(
    "answer",
    ["B: a blue umbrella", "B. A blue umbrella", "(B) a blue umbrella", "B) blue umbrella", "Option B - a blue umbrella",
     "B blue umbrella", "B) The blue one on the left"],
)  # fmt: skip
def test_letter_with_text(answer: str) -> None:
    assert parse_choice(answer, OPTIONS) == "B"


@pytest.mark.parametrize("answer", ["a blue umbrella", "A Blue Umbrella.", "blue umbrella", "\\text{a blue umbrella}"])
def test_option_text(answer: str) -> None:
    assert parse_choice(answer, OPTIONS) == "B"


@pytest.mark.parametrize(
    "answer", ["B is correct", "(B) is the answer", "Option B is the correct answer", "B, blue umbrella"]
)
def test_letter_stated_in_a_sentence(answer: str) -> None:
    assert parse_choice(answer, OPTIONS) == "B"


def test_sentence_ending_in_an_option() -> None:
    assert parse_choice("It is a blue umbrella.", OPTIONS) == "B"
    assert parse_choice("It is not a blue umbrella.", OPTIONS) is None


def test_numeric_option_matched_by_value() -> None:
    assert parse_choice("0.5", OPTIONS) == "D"
    assert parse_choice("\\frac{1}{2}", OPTIONS) == "D"


@pytest.mark.parametrize(
    "answer",
    [
        "A man is standing under a blue umbrella",  # the article is not option A
        "A or B",  # two options
        "A, C",
        "A and B",
        "A/B",
        "(A) or (B)",
        "B, C",
        "Both A and B",
        "B: a red umbrella",  # the letter contradicts the text
        "E",  # not an option
        "I think B",
        "",
    ],
)
def test_names_no_single_option(answer: str) -> None:
    assert parse_choice(answer, OPTIONS) not in ("A", "B")


def test_option_text_needs_the_options() -> None:
    assert parse_choice("a blue umbrella") is None
    assert parse_choice("B blue umbrella") is None  # without options a bare "B word" may be prose


def test_article_led_option_texts() -> None:
    options = {"A": "A cat", "B": "A dog"}
    assert parse_choice("A dog", options) == "B"  # the option's text, not the letter A
    assert parse_choice("A", options) == "A"
    assert parse_choice("dogs", options) == "B"


def test_verify_choice_against_specs() -> None:
    spec = AnswerSpec("B", "choice", OPTIONS)
    assert verify_choice("a blue umbrella", spec)
    assert not verify_choice("a red umbrella", spec)
    assert verify("(b)", "B")  # the paper's plain-letter ground truth
    assert not verify("a blue umbrella", "B")  # no options to match the text against
    assert verify("a blue umbrella", spec.to_ground_truth())

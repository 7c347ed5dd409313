from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards.extract import answer_region, extract, extract_answer, find_boxes


@pytest.mark.parametrize(
    ("text", "boxes"),
    [
        (r"\boxed{1} and \boxed{\frac{1}{2}}", ["1", r"\frac{1}{2}"]),
        (r"\boxed{\boxed{5}}", ["5"]),  # a box that is the whole content of a box is peeled
        (r"\boxed{ \boxed{1} + \boxed{2} }", [r"\boxed{1} + \boxed{2}"]),  # inner boxes belong to the outer one
        (r"\boxed{5", []),  # never closed: not a box
        (r"\boxed{5 \boxed{6}", ["6"]),  # an unclosed box does not swallow the boxes after it
        (r"\boxed{\{1,2\}}", [r"\{1,2\}"]),  # escaped braces are not braces
        (r"\boxed{a}\\{b}", ["a"]),
        (r"\fbox{7} \framebox{8}", ["7", "8"]),
        (r"\boxed {9}", ["9"]),
        (r"\boxed{}", []),
        (r"\boxed{  }", []),
        (r"\boxed{\begin{pmatrix}1&2\\3&4\end{pmatrix}}", [r"\begin{pmatrix}1&2\\3&4\end{pmatrix}"]),
    ],
)
def test_find_boxes(text: str, boxes: list[str]) -> None:
    assert find_boxes(text) == boxes


@pytest.mark.parametrize(
    ("response", "region"),
    [
        ("<think>a</think>b", "b"),
        ("<think>a</think>b<think>c</think>d", "d"),
        ("a</think>b", "b"),  # the template opened <think> in the prompt
        ("<think>truncated reasoning", ""),
        ("b<think>truncated", "b"),
        ("< think >a< / think >b", "b"),  # Qwen2.5-VL-32B spacing
        ("plain answer", "plain answer"),
        ("<think>a</think>b<|im_end|>junk", "b"),
    ],
)
def test_answer_region(response: str, region: str) -> None:
    assert answer_region(response) == region


def test_box_in_reasoning_counts_only_when_nothing_follows_the_reasoning() -> None:
    assert extract_answer(r"<think>maybe \boxed{3}</think> so \boxed{4}") == "4"
    assert extract_answer(r"<think>so \boxed{3}</think> the answer is 5", extraction="lenient") == "5"
    assert extract_answer(r"<think>so \boxed{3}</think> the answer is 5") is None  # paper: no box, no answer
    assert extract_answer(r"<think>so \boxed{3}") is None  # unfinished (truncated) reasoning has no answer
    assert extract_answer(r"<think>\boxed{2} then \boxed{3}</think>  ") == "3"  # boxed, closed, stopped
    found = extract(r"<think>a</think><think>so \boxed{3}</think>")
    assert found is not None and (found.answer, found.source) == ("3", "boxed_in_reasoning")
    assert extract_answer(r"<think>so \boxed{3}</think> no idea") is None  # text after it: that is the answer


def test_last_box_wins_and_all_boxes_are_kept() -> None:
    found = extract(r"<think>.</think> \boxed{1}, \boxed{2} and \boxed{3}")
    assert found is not None
    assert (found.answer, found.source, found.boxes) == ("3", "boxed", ("1", "2", "3"))


@pytest.mark.parametrize(
    ("response", "answer", "source"),
    [
        ("Final Answer: The final answer is $14{,}916$. I hope it is correct.", "14{,}916", "phrase"),
        ("Final Answer: The largest $n$ is 34.", "34", "phrase"),
        ("Final Answer: Jane started growing Sphere 3 hours ago.", "3", "phrase"),
        ("**Answer:** 42", "42", "phrase"),
        ("So the ordered pair is $(7, 6)$.", "(7, 6)", "math_span"),
        ("the error increases by 100%.", "100%", "number"),
        ("Answer \\( (9+1) \\)", "(9+1)", "math_span"),
        ("We get $x = \\frac{24}{3} = 8$.", "8", "math_span"),
        ("P(A) = 2/3. <|im_start|>user", "2/3", "number"),
        ("AZYUK2A", None, None),  # a digit inside a word is not a number
        ("no numbers here", None, None),
    ],
)
def test_math_fallback_chain(response: str, answer: str | None, source: str | None) -> None:
    found = extract(response, "math", extraction="lenient")
    assert extract(response, "math") is None  # the paper's extraction reads boxes only
    if answer is None:
        assert found is None
    else:
        assert found is not None
        assert (found.answer, found.source) == (answer, source)


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("B", "B"),
        ("Yes, there is a dog.", "Yes, there is a dog"),
        ("The answer is (C).", "(C)"),
        ("**Answer: B**", "B"),
        ("Looking at the colours, I choose (B).", "(B)"),
    ],
)
def test_short_type_fallback_takes_the_region(response: str, answer: str) -> None:
    assert extract_answer(response, "choice", extraction="lenient") == answer
    assert extract_answer(response, "choice") is None


def test_long_unformatted_short_answer_uses_last_sentence() -> None:
    response = "Looking at the image. " * 30 + "The bus is red."
    assert extract_answer(response, "text", extraction="lenient") == "The bus is red"


def test_scans_are_linear_on_hostile_input() -> None:
    # 100k unclosed boxes, 100k boxes, 5000-deep nesting: one pass each (a quadratic scan would take minutes)
    assert find_boxes("\\boxed{" * 100_000) == []
    assert len(find_boxes("\\boxed{1}" * 100_000)) == 100_000
    assert find_boxes("\\boxed{" * 5000 + "1" + "}" * 5000) == ["1"]
    assert extract_answer("\\[" * 50_000 + "1", extraction="lenient") == "1"
    assert extract_answer("$" * 100_000, extraction="lenient") is None

"""Generate the synthetic sample dataset: a few dozen questions per capability, images drawn with PIL.

    python data_recipes/samples/generate.py [--out data_recipes/samples] [--rows 36] [--seed 0]

* ``perception``: one figure of coloured shapes on a 3x3 grid; questions about colour (choice), count (number),
  position (yes/no) and shape (text); a caption column describes the figure, as DOCCI captions do.
* ``text_reasoning``: short arithmetic word problems (math, number, choice, yes/no), no image.
* ``visual_reasoning``: questions about the drawn figures that need a step of reasoning (weighted sums,
  differences, fractions, majority colour, comparing two figures).

Every row carries a ``pass_rate`` (synthetic, multiples of 1/8) so difficulty orders plan on it. The output is a
pure function of the arguments: randomness uses only ``random.Random(seed).random()``, whose sequence Python
guarantees across versions, and images use a fixed palette without antialiasing. Records are written with
:func:`vlm_capcurriculum.schema.write_records`, so they are in our schema by construction.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a clone without installing

from vlm_capcurriculum.schema import SampleRecord, write_records

SIZE = 72  # pixels; small images keep the committed files small and CPU training fast
CELL = SIZE // 3
COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 160, 60), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square", "triangle")
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "centre", "right")
SOURCE = "vlmcc-samples"


class Draw:
    """Randomness from ``random()`` only (the one sequence Python promises not to change)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def below(self, n: int) -> int:
        return int(self._rng.random() * n)

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.below(len(items))]

    def sample(self, items: Sequence[Any], k: int) -> list[Any]:
        pool = list(items)
        return [pool.pop(self.below(len(pool))) for _ in range(k)]

    def pass_rate(self, low: int = 0, high: int = 8) -> float:
        return self.between(low, high) / 8


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    cell: int  # 0..8, row-major on the 3x3 grid

    @property
    def row(self) -> int:
        return self.cell // 3

    @property
    def column(self) -> int:
        return self.cell % 3

    def where(self) -> str:
        if self.cell == 4:
            return "in the centre"
        if self.row == 1:
            return f"on the {COLUMNS[self.column]}"
        if self.column == 1:
            return f"at the {ROWS[self.row]}"
        return f"at the {ROWS[self.row]} {COLUMNS[self.column]}"


def random_figure(draw: Draw, count: int) -> list[Shape]:
    cells = sorted(draw.sample(range(9), count))
    return [Shape(draw.pick(SHAPES), draw.pick(list(COLOURS)), cell) for cell in cells]


def render(shapes: Sequence[Shape], path: Path) -> None:
    from PIL import Image, ImageDraw

    palette_colours = [(255, 255, 255), *COLOURS.values()]
    image = Image.new("P", (SIZE, SIZE), 0)
    image.putpalette([channel for colour in palette_colours for channel in colour])
    canvas = ImageDraw.Draw(image)
    margin = 4
    for shape in shapes:
        x0, y0 = shape.column * CELL + margin, shape.row * CELL + margin
        x1, y1 = x0 + CELL - 2 * margin, y0 + CELL - 2 * margin
        fill = 1 + list(COLOURS).index(shape.colour)
        if shape.kind == "circle":
            canvas.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape.kind == "square":
            canvas.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            canvas.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def caption(shapes: Sequence[Shape]) -> str:
    parts = [f"a {shape.colour} {shape.kind} {shape.where()}" for shape in shapes]
    return "A white picture with " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] + "."


def plural(kind: str, n: int) -> str:
    return kind if n == 1 else f"{kind}s"


def letters(options: Sequence[str]) -> dict[str, str]:
    return {letter: option for letter, option in zip("ABCD", options, strict=False)}


def choice_text(question: str, choices: dict[str, str]) -> str:
    return question + " " + " ".join(f"{letter}: {text}" for letter, text in choices.items())


# ------------------------------------------------------------------------------------------------ perception


def perception_row(draw: Draw, index: int, shapes: list[Shape]) -> dict[str, Any]:
    kinds = Counter(shape.kind for shape in shapes)
    kind = index % 4
    if kind == 0:  # colour of a shape that occurs once: choice
        target = next((s for s in shapes if kinds[s.kind] == 1), shapes[0])
        options = draw.sample(list(COLOURS), 4)
        choices = letters(options)
        answer = "ABCD"[options.index(target.colour)]
        question = f"What colour is the {target.kind} {target.where()}?"
        return dict(problem=choice_text(f"<image>{question}", choices), answer=answer, answer_type="choice",
                    choices=choices)  # fmt: skip
    if kind == 1:  # count: number
        shape_kind = draw.pick(SHAPES)
        return dict(problem=f"<image>How many {shape_kind}s are there?", answer=str(kinds[shape_kind]),
                    answer_type="number")  # fmt: skip
    if kind == 2:  # left of: yes/no
        first, second = draw.sample(shapes, 2)
        answer = "yes" if first.column < second.column else "no"
        question = f"<image>Is the {first.colour} {first.kind} left of the {second.colour} {second.kind}?"
        return dict(problem=question, answer=answer, answer_type="yesno")
    target = draw.pick(shapes)  # shape at a place: text
    return dict(problem=f"<image>What shape is {target.where()}?", answer=target.kind, answer_type="text")


# ------------------------------------------------------------------------------------------- text reasoning


NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay")
ITEMS = ("apples", "pencils", "stamps", "marbles", "cards")


def text_row(draw: Draw, index: int) -> dict[str, Any]:
    name, item = draw.pick(NAMES), draw.pick(ITEMS)
    kind = index % 6
    if kind == 0:
        a, b = draw.between(3, 19), draw.between(2, 12)
        return dict(problem=f"{name} has {a} {item} and gets {b} more. How many {item} now?", answer=str(a + b),
                    answer_type="number")  # fmt: skip
    if kind == 1:
        per, boxes = draw.between(3, 9), draw.between(2, 7)
        return dict(problem=f"{boxes} boxes hold {per} {item} each. How many {item} in all?", answer=str(per * boxes),
                    answer_type="math")  # fmt: skip
    if kind == 2:
        slices = draw.pick((4, 6, 8, 10, 12))
        eaten = draw.between(1, slices - 1)
        left = Fraction(slices - eaten, slices)
        answer = str(left.numerator) if left.denominator == 1 else f"\\frac{{{left.numerator}}}{{{left.denominator}}}"
        return dict(problem=f"A cake has {slices} equal slices. {name} eats {eaten}. What fraction is left?",
                    answer=answer, answer_type="math")  # fmt: skip
    if kind == 3:
        a, b = draw.between(11, 29), draw.between(2, 9)
        right = a * b
        options = draw.sample([right, right + b, right - b, right + 10], 4)
        choices = letters([str(option) for option in options])
        return dict(problem=choice_text(f"What is {a} x {b}?", choices), answer="ABCD"[options.index(right)],
                    answer_type="choice", choices=choices)  # fmt: skip
    if kind == 4:
        n = draw.between(20, 60)
        prime = n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))
        return dict(problem=f"Is {n} a prime number?", answer="yes" if prime else "no", answer_type="yesno")
    x, y = draw.between(2, 9), draw.between(1, 20)
    return dict(problem=f"Solve for x: {x}x + {y} = {x * 3 + y}.", answer="3", answer_type="math")


# ------------------------------------------------------------------------------------------ visual reasoning


def visual_row(draw: Draw, index: int, figures: list[list[Shape]]) -> dict[str, Any]:
    shapes = figures[0]
    kinds = Counter(shape.kind for shape in shapes)
    colours = Counter(shape.colour for shape in shapes)
    kind = index % 6
    if kind == 0:
        a, b = draw.between(1, 4), draw.between(1, 4)
        total = a * kinds["circle"] + b * kinds["square"]
        question = f"<image>Each circle is worth {a} points, each square {b}, triangles 0. Total points?"
        return dict(problem=question, answer=str(total), answer_type="number")
    if kind == 1:
        first, second = draw.sample(SHAPES, 2)
        return dict(problem=f"<image>How many more {first}s than {second}s are there? (May be negative.)",
                    answer=str(kinds[first] - kinds[second]), answer_type="number")  # fmt: skip
    if kind == 2:
        first, second = draw.sample(list(COLOURS), 2)
        answer = "yes" if colours[first] > colours[second] else "no"
        return dict(problem=f"<image>Are there more {first} shapes than {second} shapes?", answer=answer,
                    answer_type="yesno")  # fmt: skip
    if kind == 3:
        share = Fraction(kinds["circle"], len(shapes))
        answer = (
            str(share.numerator) if share.denominator == 1 else f"\\frac{{{share.numerator}}}{{{share.denominator}}}"
        )
        return dict(problem="<image>What fraction of the shapes are circles?", answer=answer, answer_type="math")
    if kind == 4:
        colour = draw.pick(list(COLOURS))
        return dict(problem=f"<image>If all {colour} shapes are removed, how many shapes are left?",
                    answer=str(len(shapes) - colours[colour]), answer_type="number")  # fmt: skip
    more = sum(s.kind == "circle" for s in figures[0]) - sum(s.kind == "circle" for s in figures[1])
    choices = {"A": "the first", "B": "the second", "C": "same number"}
    answer = "A" if more > 0 else "B" if more < 0 else "C"
    return dict(problem=choice_text("<image><image>Which picture has more circles?", choices), answer=answer,
                answer_type="choice", choices=choices)  # fmt: skip


# ----------------------------------------------------------------------------------------------- assembly


def build(out: Path, rows: int, seed: int) -> dict[str, list[SampleRecord]]:
    draw = Draw(seed)
    datasets: dict[str, list[SampleRecord]] = {"perception": [], "text_reasoning": [], "visual_reasoning": []}

    def add(capability: str, index: int, fields: dict[str, Any], images: Sequence[str] = (), **extra: Any) -> None:
        datasets[capability].append(
            SampleRecord(
                id=f"{capability}-{index:03d}",
                capability=capability,
                images=tuple(images),
                pass_rate=draw.pass_rate(*{"perception": (2, 8), "text_reasoning": (1, 8)}.get(capability, (0, 7))),
                source=SOURCE,
                extra=extra,
                **fields,
            )
        )

    for index in range(rows):
        shapes = random_figure(draw, draw.between(3, 6))
        image = f"images/perception/p{index:03d}.png"
        render(shapes, out / image)
        add("perception", index, perception_row(draw, index, shapes), [image], caption=caption(shapes))
    for index in range(rows):
        add("text_reasoning", index, text_row(draw, index))
    for index in range(rows):
        figures = [random_figure(draw, draw.between(3, 7))]
        images = [f"images/visual_reasoning/v{index:03d}.png"]
        if index % 6 == 5:
            figures.append(random_figure(draw, draw.between(3, 7)))
            images.append(f"images/visual_reasoning/v{index:03d}b.png")
        for figure, image in zip(figures, images, strict=True):
            render(figure, out / image)
        add("visual_reasoning", index, visual_row(draw, index, figures), images)
    return datasets


def generate(out: str | Path, rows: int = 36, seed: int = 0) -> dict[str, Path]:
    """Write ``<capability>.jsonl`` and ``images/`` under ``out``; returns the JSONL path of each capability."""
    out = Path(out)
    written: dict[str, Path] = {}
    for capability, records in build(out, rows, seed).items():
        written[capability] = out / f"{capability}.jsonl"
        write_records(records, written[capability])
    return written


def main(argv: Sequence[str] | None = None, _print: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="output directory")
    parser.add_argument("--rows", type=int, default=36, help="rows per capability")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for capability, path in generate(args.out, args.rows, args.seed).items():
        _print(f"{capability}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

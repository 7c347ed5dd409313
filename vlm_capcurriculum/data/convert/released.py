"""The paper's released stage datasets (``UCSC-VLAA/VLM-CapCurriculum-{Perception,TextReasoning,VisualReasoning}-Data``).

The schema's row checker already reads their columns (``schema/columns.py``); this converter only adds the
capability, from ``--capability`` or the file name, and writes our format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.convert.base import Converted, ImageSink, Source
from vlm_capcurriculum.schema import RowLocation

_CAPABILITY_BY_NAME = (("perception", "perception"), ("text", "text_reasoning"), ("visual", "visual_reasoning"))


def capability_from_name(path: Path) -> str | None:
    """The stage capability a released file's name implies, or None."""
    name = path.name.lower()
    for marker, capability in _CAPABILITY_BY_NAME:
        if marker in name:
            return capability
    return None


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    return dict(row)


SOURCE = Source("capcurriculum", "", convert_row)

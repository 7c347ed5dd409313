"""Sample records: the typed interchange format, its validating readers and its writers."""

from vlm_capcurriculum.schema.images import ImageChecker, ImageChecks, pillow_available
from vlm_capcurriculum.schema.issues import (
    DataFileError,
    ReadReport,
    RecordIssue,
    RecordValidationError,
    RowLocation,
)
from vlm_capcurriculum.schema.readers import SUPPORTED_SUFFIXES, iter_rows, read_records
from vlm_capcurriculum.schema.record import (
    IMAGE_PLACEHOLDER,
    PAPER_CAPABILITIES,
    RecordError,
    SampleRecord,
)
from vlm_capcurriculum.schema.writers import write_records

__all__ = [
    "IMAGE_PLACEHOLDER",
    "PAPER_CAPABILITIES",
    "SUPPORTED_SUFFIXES",
    "DataFileError",
    "ImageChecker",
    "ImageChecks",
    "ReadReport",
    "RecordError",
    "RecordIssue",
    "RecordValidationError",
    "RowLocation",
    "SampleRecord",
    "iter_rows",
    "pillow_available",
    "read_records",
    "write_records",
]

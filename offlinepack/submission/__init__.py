"""Submission: mask TIFFs the scorer reads back exactly, an atomically replaced zip, and its validator."""

from offlinepack.submission.package import SubmissionError, ZipResult, write_submission_zip, zip_destination
from offlinepack.submission.tiff import read_tiff_like_scorer, tiff_shape, write_mask_tiff
from offlinepack.submission.validate import EntryCheck, ValidationReport, validate_submission

__all__ = [
    "EntryCheck",
    "SubmissionError",
    "ValidationReport",
    "ZipResult",
    "read_tiff_like_scorer",
    "tiff_shape",
    "validate_submission",
    "write_mask_tiff",
    "write_submission_zip",
    "zip_destination",
]

"""Errors raised by the dataset loaders."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset is missing, empty, corrupt or in an unexpected layout."""

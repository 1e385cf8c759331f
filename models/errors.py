"""Errors raised by models/: set-up problems the user can fix by changing the configuration.

They derive from :class:`features.errors.ExportcastError` (the lowest floor), so the CLI
prints them as one ``error: ...`` line with exit code 2.
"""

from __future__ import annotations

from features.errors import ExportcastError

__all__ = ["ExportcastError", "ModelSetupError"]


class ModelSetupError(ExportcastError, ValueError):
    """A configured model cannot be built (unknown name, bad parameters); names the model."""

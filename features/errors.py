"""The base of the project's own errors, on the lowest floor that raises them (features/).

An error class that derives from :class:`ExportcastError` is a problem the user can fix; the
CLI prints it as ONE clear message on stderr with exit code 2, without a traceback. Its
message names what to fix: the file, line, column, series, setting or folder.

``models/`` and ``flows/`` build on these classes; ``exportcast/errors.py`` re-exports them
for the CLI. This module imports nothing of the project.
"""

from __future__ import annotations

__all__ = ["ExportcastError", "DataWarning"]


class ExportcastError(Exception):
    """A problem with the user's input, settings or environment (not a bug in exportcast)."""


class DataWarning(UserWarning):
    """Input data that is accepted but looks wrong (e.g. a file cut short); the message names
    the file and line. The CLI prints these as ``warning: ...``."""

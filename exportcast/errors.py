"""The project's own errors: problems a user can fix, whose message is the whole story.

Every package (features/, models/, flows/) may import this tiny module. An error class that
derives from :class:`ExportcastError` is printed by the CLI as ONE clear message on stderr
with exit code 2, without a traceback (``exportcast --debug ...`` shows the traceback too).
Anything else that escapes a command is a bug and keeps its traceback.

The message must name what to fix: the file, line, column, series, setting or folder.
"""

from __future__ import annotations


class ExportcastError(Exception):
    """A problem with the user's input, settings or environment (not a bug in exportcast)."""


class ModelSetupError(ExportcastError, ValueError):
    """A configured model cannot be built (unknown name, bad parameters); names the model."""


class DataWarning(UserWarning):
    """Input data that is accepted but looks wrong (e.g. a file cut short); the message names
    the file and line. The CLI prints these as ``warning: ...``."""

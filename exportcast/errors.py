"""The project's own errors: problems a user can fix, whose message is the whole story.

Each class lives on the lowest floor that raises it (:mod:`features.errors`,
:mod:`models.errors`); this module re-exports them for the CLI and ``flows/``. An error class
that derives from :class:`ExportcastError` is printed by the CLI as ONE clear message on stderr
with exit code 2, without a traceback (``exportcast --debug ...`` shows the traceback too).
Anything else that escapes a command is a bug and keeps its traceback.

The message must name what to fix: the file, line, column, series, setting or folder.
"""

from __future__ import annotations

from features.errors import DataWarning, ExportcastError
from models.errors import ModelSetupError

__all__ = ["ExportcastError", "ModelSetupError", "DataWarning"]

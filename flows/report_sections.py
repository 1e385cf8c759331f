"""The report's chart sections kept by the content of what they read (issue 22: the cached rerun).

Drawing the charts is most of the report's cost (the fan charts alone about 8 s on the embedded
data), and a rerun on unchanged data draws the same bytes again. Each drawn section is a function
of the report's inputs; which inputs it reads depends on the data (a run without tracking reads
no tracking chart's inputs). So a section's dependencies are recorded as it runs, not declared:

- the section is given the inputs behind a ``Recorder`` that notes every attribute read
  (``monthly``, ``target_year``, ``run.config`` ...);
- its HTML is stored with the names it read and one sha256 over their values;
- on a later run, an entry whose names hash to the same value over the new inputs is the
  section's HTML: the section is deterministic, so the same values lead it down the same path to
  the same reads and the same bytes (the build-system rule of Shake and Salsa: dynamic
  dependencies, checked by value).

Entries live under ``<cache dir>/<code version>/`` (the sources of ``flows/``, ``features/`` and
``models/`` and matplotlib's version: a change in any starts afresh), at most ``KEEP`` per
section, written atomically. A value the digest cannot read (an object that is neither a table,
a plain value nor the run record) makes the section uncached, never wrongly cached.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KEEP", "Recorder", "SectionCache", "code_version", "digest", "record"]

#: entries kept per section (the newest first): a rerun, and a switch back to the data before
KEEP = 4

Section = Callable[[Any], str]


class Uncacheable(Exception):
    """A value read by a section that the digest cannot read: the section is drawn every time."""


class Recorder:
    """The report's inputs (or the run record inside them) with every attribute read noted in
    ``reads`` as a dotted name; the run record is wrapped in turn (``run.config``, ...)."""

    _WRAPPED = ("run",)

    def __init__(self, target: Any, reads: set[str] | None = None, prefix: str = "") -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_reads", set() if reads is None else reads)
        object.__setattr__(self, "_prefix", prefix)

    @property
    def reads(self) -> set[str]:
        return self._reads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        dotted = self._prefix + name
        if not self._prefix and name in self._WRAPPED and value is not None:
            self._reads.add(f"{name}?")  # that it is there: a branch may read nothing else of it
            return Recorder(value, self._reads, prefix=f"{name}.")
        self._reads.add(dotted)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a drawn report section may not set {self._prefix}{name}: it would not be recorded")


def record(section: Section, inputs: Any) -> tuple[str, list[str]]:
    """Run ``section`` on ``inputs`` behind a Recorder: its HTML and the sorted names it read.
    A module-level function, so that loky workers can run it."""
    recorder = Recorder(inputs)
    html = section(recorder)
    return html, sorted(recorder.reads)


def _lookup(inputs: Any, dotted: str) -> Any:
    """The value of a recorded name; ``name?``: whether that value is not None."""
    if dotted.endswith("?"):
        return _lookup(inputs, dotted[:-1]) is not None
    value = inputs
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _feed(h: Any, value: Any) -> None:
    """Update the sha256 ``h`` with ``value``; Uncacheable for an unknown kind of value."""
    if isinstance(value, pd.DataFrame):
        h.update(json.dumps([list(map(str, value.columns)), list(map(str, value.dtypes))]).encode())
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, pd.Series):
        h.update(json.dumps([str(value.name), str(value.dtype)]).encode())
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif value is None or isinstance(value, (str, bool, int, float, np.integer, np.floating, Path, dict, list, tuple)):
        h.update(json.dumps(_plain(value), sort_keys=True).encode())
    else:
        raise Uncacheable(type(value).__name__)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data, exact for floats (repr), or Uncacheable."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return f"path:{value}"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise Uncacheable(type(value).__name__)


def digest(inputs: Any, reads: Sequence[str]) -> str:
    """sha256 over the names ``reads`` and their values in ``inputs``."""
    h = hashlib.sha256()
    for name in reads:
        h.update(name.encode() + b"\0")
        _feed(h, _lookup(inputs, name))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class SectionCache:
    """Drawn sections by the content of what they read, under ``root/<version>/``."""

    root: Path
    version: str

    def _index(self, section: str) -> Path:
        return self.root / self.version / f"{section}.json"

    def _entries(self, section: str) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self._index(section).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return entries if isinstance(entries, list) else []

    def get(self, section: str, inputs: Any) -> str | None:
        """The stored HTML of ``section`` whose reads hash the same over ``inputs``; None: draw it."""
        for entry in self._entries(section):
            try:
                if digest(inputs, entry["reads"]) == entry["digest"]:
                    return (self.root / self.version / entry["html"]).read_text(encoding="utf-8")
            except (AttributeError, KeyError, OSError, TypeError, Uncacheable):
                continue
        return None

    def put(self, section: str, inputs: Any, html: str, reads: list[str]) -> None:
        """Keep ``html`` for the values of ``reads`` in ``inputs`` (the newest of ``KEEP`` entries);
        nothing when a read value cannot be digested or the folder cannot be written (a cache
        never fails the report)."""
        try:
            key = digest(inputs, reads)
        except Uncacheable:
            return
        try:
            self._store(section, key, html, reads)
        except OSError:
            return

    def _store(self, section: str, key: str, html: str, reads: list[str]) -> None:
        from flows.publish import write_atomic

        folder = self.root / self.version
        name = f"{section}-{key[:24]}.html"
        write_atomic(folder / name, html.encode("utf-8"))
        entries = [{"reads": reads, "digest": key, "html": name}]
        entries += [e for e in self._entries(section) if e.get("html") != name][: KEEP - 1]
        write_atomic(self._index(section), json.dumps(entries, indent=1).encode("utf-8"))
        kept = {e["html"] for e in entries}
        for old in folder.glob(f"{section}-*.html"):
            if old.name not in kept:
                old.unlink(missing_ok=True)


#: the folders whose Python sources version the cache
SOURCE_DIRS = ("flows", "features", "models")


def code_version(root: Path = Path(__file__).resolve().parents[1]) -> str:
    """The cache's version: sha256 over the sources of ``SOURCE_DIRS`` (paths and contents) and
    matplotlib's version (the pixels it draws)."""
    import matplotlib

    h = hashlib.sha256(matplotlib.__version__.encode() + b"\0")
    for path in sorted(p for d in SOURCE_DIRS for p in (root / d).rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:32]

"""exportcast: the command-line face over features/, models/ and flows/."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def git_short_head(root: Path | None = None) -> str:
    """The short hash of the git HEAD of ``root`` (default: this checkout), or "unknown" outside a
    git checkout (an installed wheel, a source archive) or without git."""
    import subprocess

    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # never the HEAD of some enclosing repository
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def version_text() -> str:
    """``exportcast <package version> (git <short head>)``: what ``exportcast --version`` prints."""
    from importlib import metadata

    try:
        version = metadata.version("exportcast")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        version = __version__
    return f"exportcast {version} (git {git_short_head()})"

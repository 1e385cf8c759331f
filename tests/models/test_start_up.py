"""What loading the settings costs at start-up: the interval constants without scipy.stats."""

import subprocess
import sys
from pathlib import Path

from models.core.base import LEVELS, Z

ROOT = Path(__file__).resolve().parents[2]


def test_z_is_scipy_stats_norm_ppf_to_the_bit() -> None:
    from scipy.stats import norm

    assert Z == {level: float(norm.ppf(0.5 + level / 200)) for level in LEVELS}
    assert Z[95] == 1.959963984540054


def test_loading_the_settings_imports_neither_scipy_stats_nor_statsmodels() -> None:
    """The supervisor loads the settings (the registry imports the model classes for their traits)
    and then waits for the whole run: scipy.stats and statsmodels cost it about a second and 50 MB."""
    code = (
        "import sys\nfrom flows.settings import load_settings\nload_settings(sys.argv[1])\n"
        "print(sorted(m for m in ('scipy.stats', 'statsmodels') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "config.yaml")], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

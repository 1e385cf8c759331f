"""The report in a real headless Chromium (Debian's ``chromium``): it loads offline without console
errors, every chart decodes to a non-zero natural size, nothing overflows 1280 px, and a
screenshot is taken (``EXPORTCAST_REPORT_SCREENSHOT=path`` keeps a copy to look at)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import write_dataset, write_outputs

from flows.report import write_report

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
    "--window-size=1280,2000",
]
# the probe is added to a COPY of the report (the report itself has no script): it records each image's
# natural size and the page's scroll width on the body once everything has loaded
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return [i.complete, i.naturalWidth, i.naturalHeight]; });
  document.body.setAttribute('data-probe', JSON.stringify({images: imgs,
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth}));
});
</script>"""


def _find_chromium() -> str | None:
    for candidate in (CHROMIUM, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _find_chromium()
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(
            "chromium is not installed and the tests are not running as root, so it cannot be installed "
            "(apt-get install -y chromium)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True, timeout=1200, env=env
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"chromium is not installed and `apt-get install -y chromium` failed: {exc}")
    found = _find_chromium()
    if not found:
        pytest.skip("apt-get install chromium finished but /usr/bin/chromium is missing")
    return found


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    data = write_dataset(root / "data")
    out = write_outputs(root / "outputs")
    return write_report(out, data_dir=data)


def _run(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def _console_errors(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "Uncaught" in line
        or re.search(r"CONSOLE.*(error|Error)", line)
        or "Failed to load resource" in line
        or "net::ERR_" in line
    ]


def test_loads_without_console_errors(chromium, report_file, tmp_path):
    done = _run(chromium, tmp_path, "--dump-dom", report_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_errors(done.stderr) == []
    assert "<h1>Korea's exports: 2026 forecast report</h1>" in done.stdout
    assert len(re.findall(r"<img class=\"chart\"", done.stdout)) == 3


def test_images_decode_and_page_fits_1280(chromium, report_file, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_file.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = _run(chromium, tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_errors(done.stderr) == []
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found, "the probe did not run (page never fired load)"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(probe["images"]) == 3
    for complete, width, height in probe["images"]:
        assert complete and width > 0 and height > 0
    # no horizontal scrolling at 1280 px
    assert probe["scrollWidth"] <= probe["clientWidth"] <= 1280


def test_screenshot(chromium, report_file, tmp_path):
    shot = tmp_path / "report.png"
    done = _run(chromium, tmp_path, f"--screenshot={shot}", report_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_errors(done.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    keep = os.environ.get("EXPORTCAST_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)

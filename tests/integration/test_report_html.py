"""The report page in a real browser: headless Chromium loads it from disk, and nothing is broken.

A copy of index.html with a small checking script (not part of the report) is loaded next to the
original, so the relative PNG paths resolve the same way. The script records every error event
(failed image loads included), every console.error / console.warn, and each image's natural size,
and writes them into the DOM, which ``--dump-dom`` prints. Chromium's own log (``--enable-logging``)
must show no console message either. Missing Chromium fails the test: it is a declared system
dependency (``apt-get install chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import write_yaml
from tests.report_fixture import build_store
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.report import write_report

pytestmark = pytest.mark.integration

CHECK = """<script>
window.__wf = {errors: [], console: []};
window.addEventListener('error', e => window.__wf.errors.push(
  String(e.message || (e.target && (e.target.src || e.target.href)) || 'error')), true);
for (const level of ['error', 'warn']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => { window.__wf.console.push(level + ': ' + args.join(' ')); orig(...args); };
}
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                             width: i.naturalWidth, height: i.naturalHeight}));
  const out = document.createElement('pre');
  out.id = 'wf-check';
  out.textContent = JSON.stringify({imgs, errors: window.__wf.errors, console: window.__wf.console});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("Chromium is not installed: run scripts/install-system-deps.sh or `apt-get install -y chromium`")


def check_page(index: Path, profile: Path) -> dict:
    """Load the report in headless Chromium; return the checker's findings and Chromium's console log lines."""
    page = index.read_text()
    probe = index.with_name("_check.html")
    probe.write_text(page.replace("<head>", "<head>" + CHECK, 1))
    try:
        proc = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="wf-check">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert m, f"the checker did not run; DOM tail: {proc.stdout[-500:]}"
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    found["log"] = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return found


@pytest.fixture
def report(tmp_path) -> Path:
    cfg = load_config(write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {tmp_path / "home"}}}
rating: {{bootstrap_rounds: 20}}
"""))
    build_store(cfg)
    return write_report(cfg)


def test_the_report_loads_in_chromium_with_every_image_and_no_errors(report, tmp_path):
    found = check_page(report, tmp_path / "profile")
    assert found["errors"] == [] and found["console"] == [] and found["log"] == []
    assert len(found["imgs"]) == 10
    for img in found["imgs"]:
        with Image.open(report.parent / img["src"]) as png:
            assert img["complete"] and (img["width"], img["height"]) == png.size, img


def test_the_check_catches_a_missing_figure(report, tmp_path):
    (report.parent / "judges.png").unlink()
    found = check_page(report, tmp_path / "profile")
    broken = [i for i in found["imgs"] if i["width"] == 0]
    assert [i["src"] for i in broken] == ["judges.png"]
    assert any("judges.png" in e for e in found["errors"])


def test_an_empty_report_loads_cleanly(tmp_path):
    from warriorflow.store.rating_store import RatingStore

    cfg = load_config(write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {tmp_path / "home"}}}
"""))
    RatingStore(cfg.duckdb_path).close()
    found = check_page(write_report(cfg), tmp_path / "profile")
    assert found == {"imgs": [], "errors": [], "console": [], "log": []}

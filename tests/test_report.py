"""The run report: a self-contained page with the configuration, the ensemble, the stages, the
structure figure and the cluster table; checked as HTML and in a real headless browser."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser

import pytest
import xarray as xr

from repspace.data import FingerprintConfig, build_fingerprint
from repspace.pipeline import RunConfig, run
from repspace.store import write_posteriors

from .test_pipeline import N_CHANNELS, N_IMAGES, entries, synthetic_posteriors

pytestmark = pytest.mark.distributed


class Page(HTMLParser):
    """Images (their src), table classes with their body rows, and the title of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.rows: dict[str, int] = {}
        self.title, self._table, self._in_body, self._in_title = "", None, False, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag == "table":
            self._table = a.get("class", "")
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table:
            for cls in self._table.split():
                self.rows[cls] = self.rows.get(cls, 0) + 1
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, client):
    tmp = tmp_path_factory.mktemp("report")
    config = RunConfig(run_dir=str(tmp / "myrun"), n_images=N_IMAGES, image_size=32, pair_block_units=2 * N_CHANNELS,
                       dashboard=False, stages=("channels", "pairs", "structure", "figures"))
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32,
                                        store=config.store))
    mu, logvar, _ = synthetic_posteriors(6)
    write_posteriors(config.store, mu, logvar, entries(range(6)))
    result = run(config, client=client)
    return config, result


def test_the_report_holds_what_the_run_found(finished_run):
    config, result = finished_run
    assert result.report == config.figure_dir.parent / "report.html" and "report.html" in result.summary()
    text = result.report.read_text()
    page = Page()
    page.feed(text)
    assert page.title == "repspace run myrun"
    st = xr.open_zarr(config.store, group="structure", consolidated=False)
    clusters = {m: int((st["cluster_size"].sel(measure=m) > 0).sum()) for m in ("vi", "nmi")}
    assert clusters["vi"] >= 2 and page.rows["clusters-vi"] == clusters["vi"] and page.rows["clusters-nmi"] == clusters["nmi"]
    assert page.rows["stages"] == 3  # channels, pairs, structure: the groups with provenance
    assert "<th>seconds</th><th>estimated before it started</th>" in text  # beside the time each stage took
    for img in page.images:  # every figure inlined, and a real PNG
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("channel structure" in img["alt"] for img in page.images)
    for img in page.images:  # each says what it shows, in words, not its file's name
        assert " " in img["alt"] and img["alt"] not in {p.stem for p in result.figures}, img["alt"]
    assert "<summary>the channel structure figure (NMI)</summary>" in text
    assert "posX" in text and "posY" in text  # the clusters' best-matching factors
    assert 'group="pairs"' in text and "pair_block_units" in text  # how to open it; the configuration
    assert "None: every model was encoded" in text


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


CHECK = """<!DOCTYPE html><html><body><iframe id="f" src="report.html" style="width:1300px;height:6000px"></iframe>
<pre id="result">pending</pre><script>
document.getElementById("f").addEventListener("load", () => {
  const d = document.getElementById("f").contentDocument;
  const imgs = Array.from(d.images);
  const shown = (i) => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().height > 0;
  document.getElementById("result").textContent = JSON.stringify({
    title: d.title, images: imgs.length, broken: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).length,
    figure: imgs.filter((i) => i.alt.includes("channel structure figure (VI)") && shown(i)).length,
    cluster_rows: d.querySelectorAll("table.clusters-vi tbody tr").length});
});
</script></body></html>"""


def test_the_report_in_a_headless_browser(finished_run, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium package)")
    config, result = finished_run
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(result.report, site / "report.html")
    (site / "check.html").write_text(CHECK)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
             f"http://127.0.0.1:{server.server_address[1]}/check.html"],
            capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    found = re.search(r'<pre id="result">(.*?)</pre>', out.stdout, re.S)
    assert found, out.stderr[-2000:]
    got = json.loads(found.group(1))
    st = xr.open_zarr(config.store, group="structure", consolidated=False)
    assert got["title"] == "repspace run myrun"
    assert got["images"] >= 1 and got["broken"] == 0 and got["figure"] == 1
    assert got["cluster_rows"] == int((st["cluster_size"].sel(measure="vi") > 0).sum())

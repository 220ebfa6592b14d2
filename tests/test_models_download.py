"""The zoo downloader against an HTTP server on 127.0.0.1 serving zips built here."""

import http.server
import io
import threading
import zipfile

import pytest

from repspace.models.download import download_models, is_downloaded
from repspace.models.zoo import parse_model_numbers


def make_zip(n: int, *, prefix: bool = True, tfhub: bool = True, size: int = 200_000) -> bytes:
    buf = io.BytesIO()
    root = f"{n}/" if prefix else ""
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        if tfhub:
            zf.writestr(f"{root}model/tfhub/saved_model.pb", bytes([n % 256]) * size)
            zf.writestr(f"{root}model/tfhub/tfhub_module.pb", b"\x08\x03")
            zf.writestr(f"{root}model/tfhub/variables/variables.index", b"index")
        zf.writestr(f"{root}model/results/gin/train.gin", "dataset.name = 'dsprites_full'\n")
        zf.writestr(f"{root}postprocessed/mean/results/json.txt", "{}")
        zf.writestr("../evil.txt", "outside")
    return buf.getvalue()


class ZooServer:
    """Serves /<n>.zip from ``files``; honours Range; ``forbidden`` answers 403;
    ``cut`` sends only the first half of a file once (then closes the connection)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.forbidden: set[str] = set()
        self.cut: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name in server.forbidden:
                    self.send_error(403, "AccessDenied")
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/unsupervised_study_v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with ZooServer() as s:
        yield s


def test_success_forbidden_missing_corrupt(server, tmp_path):
    for n in (0, 1, 2):
        server.files[f"{n}.zip"] = make_zip(n, prefix=(n != 1))
    server.files["3.zip"] = make_zip(3)
    server.forbidden.add("3.zip")
    good = make_zip(4)
    server.files["4.zip"] = good[:1000] + bytes(b ^ 0xFF for b in good[1000:1100]) + good[1100:]
    server.files["5.zip"] = make_zip(5, tfhub=False)
    report = download_models(range(7), tmp_path, base_url=server.url, workers=3, progress=False, check_models=False)
    assert report.downloaded == [0, 1, 2]
    assert set(report.failed) == {3, 4, 5, 6}
    assert "403" in report.failed[3]
    assert "404" in report.failed[6]
    assert "corrupt" in report.failed[4]
    assert "model/tfhub" in report.failed[5]
    for n in (0, 1, 2):
        assert is_downloaded(tmp_path, n)
        pb = tmp_path / str(n) / "model" / "tfhub" / "saved_model.pb"
        assert pb.read_bytes() == bytes([n]) * 200_000
        assert (tmp_path / str(n) / "model" / "results" / "gin" / "train.gin").is_file()
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    for n in (3, 4, 5, 6):
        assert not (tmp_path / str(n)).exists()
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.part"))
    assert "4 failed" in report.summary()

    # A rerun fetches nothing that is done and retries what failed.
    server.requests.clear()
    server.files["4.zip"] = good
    again = download_models(range(7), tmp_path, base_url=server.url, workers=2, progress=False, check_models=False)
    assert again.skipped == [0, 1, 2] and again.downloaded == [4]
    assert sorted(again.failed) == [3, 5, 6]
    assert {name for name, _ in server.requests} == {"3.zip", "4.zip", "5.zip", "6.zip"}


def test_cut_connection_is_resumed_within_a_call(server, tmp_path):
    data = make_zip(7)
    server.files["7.zip"] = data
    server.cut.add("7.zip")
    report = download_models([7], tmp_path, base_url=server.url, progress=False, check_models=False)
    assert report.downloaded == [7] and report.ok
    assert report.bytes_fetched == len(data)
    assert server.requests == [("7.zip", None), ("7.zip", f"bytes={len(data) // 2}-")]


def test_cut_connection_leaves_a_part_file_that_a_rerun_resumes(server, tmp_path, capsys):
    data = make_zip(8)
    server.files["8.zip"] = data
    server.cut.add("8.zip")
    report = download_models([8], tmp_path, base_url=server.url, retries=0, progress=True, check_models=False)
    assert list(report.failed) == [8]
    assert "model 8: FAILED" in capsys.readouterr().err
    part = tmp_path / "8.zip.part"
    assert part.stat().st_size == len(data) // 2
    assert not is_downloaded(tmp_path, 8)  # a partial download is not done

    report = download_models([8], tmp_path, base_url=server.url, retries=0, progress=True, check_models=False)
    assert report.downloaded == [8]
    assert server.requests[-1] == ("8.zip", f"bytes={len(data) // 2}-")
    assert not part.exists()
    assert "[1/1] model 8: ok" in capsys.readouterr().err


def test_unreachable_server_reports_every_model(tmp_path):
    report = download_models([1, 2], tmp_path, base_url="http://127.0.0.1:9", retries=0, progress=False, check_models=False)
    assert sorted(report.failed) == [1, 2]


def test_cli(server, tmp_path, capsys):
    from repspace.jobs import download_models as job

    server.files["9.zip"] = make_zip(9)
    server.files["10.zip"] = make_zip(10)
    rc = job.main(["9-10", "--dest", str(tmp_path), "--base-url", server.url, "--workers", "2", "--no-check"])
    assert rc == 0 and is_downloaded(tmp_path, 9) and is_downloaded(tmp_path, 10)
    rc = job.main(["9-11", "--dest", str(tmp_path), "--base-url", server.url, "--quiet", "--no-check"])
    assert rc == 1
    assert "model 11: HTTP 404" in capsys.readouterr().out
    assert parse_model_numbers("9-11") == [9, 10, 11]


def test_entries_that_climb_out_are_reported_not_dropped_silently(tmp_path):
    with ZooServer() as server:
        server.files["7.zip"] = make_zip(7)
        report = download_models([7], tmp_path, base_url=server.url, progress=False, check_models=False)
    assert report.downloaded == [7] and report.dropped == {7: ["../evil.txt"]}
    assert "1 zip entries not extracted (paths outside the model folder): ../evil.txt" in report.summary()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_whole_zip_whose_model_cannot_be_opened_does_not_count(tmp_path):
    pytest.importorskip("tensorflow")
    with ZooServer() as server:
        server.files["7.zip"] = make_zip(7)  # a fine zip, but saved_model.pb is not a model
        report = download_models([7], tmp_path, base_url=server.url, progress=False)
    assert "its model cannot be opened" in report.failed[7]
    assert not is_downloaded(tmp_path, 7) and not (tmp_path / "7").exists() and not (tmp_path / "7.zip").exists()


@pytest.mark.tf
def test_a_real_model_passes_the_check(tmp_path):
    pytest.importorskip("tensorflow")
    from .test_models_encoders import linear_weights, write_tf2_saved_model

    model = tmp_path / "built" / "model" / "tfhub"
    write_tf2_saved_model(model, linear_weights(0))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in model.rglob("*"):
            if f.is_file():
                zf.write(f, f"12/model/tfhub/{f.relative_to(model)}")
    with ZooServer() as server:
        server.files["12.zip"] = buf.getvalue()
        report = download_models([12], tmp_path / "dest", base_url=server.url, progress=False)
    assert report.downloaded == [12] and not report.failed and is_downloaded(tmp_path / "dest", 12)

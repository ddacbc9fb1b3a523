"""The player server (worldmodels/play.py): model discovery, what it serves, headers and MIME types, and that no path
outside the player's files and the manifests' files is reachable."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest

from worldmodels.play import discover, make_server, needs_build

MANIFEST = {"format": "worldmodels-manifest", "format_version": 1, "task": "breakout", "name": "tiny",
            "onnx": "tiny.onnx"}


@pytest.fixture()
def served(tmp_path):
    """A server over a fake dist/ and one extra model folder; yields (port, models, paths)."""
    dist = tmp_path / "dist"
    (dist / "ort").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>player</title>")
    (dist / "bench.html").write_text("<!doctype html><title>bench</title>")
    (dist / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    (dist / "app.js").write_text("console.log('app')")
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.json").write_text(json.dumps(MANIFEST))
    (models / "tiny.onnx").write_bytes(b"\x08\x07onnx-bytes")
    (models / "secret.txt").write_text("not named by any manifest")
    (models / "notes.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "outside.txt").write_text("outside the served folders")
    found = discover(models_dir=tmp_path / "none", run_roots=(), extra=(models,))
    server = make_server(0, found, dist=dist, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], found
    server.shutdown()
    server.server_close()


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """A raw request: the path goes out exactly as given (no client-side `..` normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
    conn.endheaders()
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, {k.lower(): v for k, v in res.getheaders()}, body


def test_discovers_only_manifests(served):
    _, found = served
    assert [(m.task, m.name, m.source) for m in found] == [("breakout", "tiny", "extra")]
    assert set(found[0].files) == {"tiny.json", "tiny.onnx"}


def test_serves_player_models_and_index_with_isolation_headers(served):
    port, found = served
    status, headers, body = get(port, "/")
    assert status == 200 and b"player" in body and headers["content-type"].startswith("text/html")
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    status, headers, _ = get(port, "/ort/ort-wasm-simd-threaded.wasm")
    assert status == 200 and headers["content-type"] == "application/wasm"
    assert get(port, "/app.js")[1]["content-type"].startswith("text/javascript")
    assert b"bench" in get(port, "/bench")[2]
    status, _, body = get(port, "/models/index.json")
    index = json.loads(body)["models"]
    assert status == 200 and [m["id"] for m in index] == [found[0].id]
    status, _, body = get(port, index[0]["manifest"])
    assert status == 200 and json.loads(body)["name"] == "tiny"
    status, _, body = get(port, f"/models/{found[0].id}/tiny.onnx")
    assert status == 200 and body == b"\x08\x07onnx-bytes"
    assert get(port, "/", method="HEAD")[0] == 200


@pytest.mark.parametrize("path", [
    "/../outside.txt", "/%2e%2e/outside.txt", "/ort/../../outside.txt", "/models/../../outside.txt",
    "/..%2foutside.txt", "/%2E%2E%2F%2E%2E%2Fetc/passwd", "/ort/..\\..\\outside.txt",
])
def test_path_traversal_is_refused(served, path):
    status, _, body = get(served[0], path)
    assert status in (403, 404)
    assert b"outside the served folders" not in body


def test_files_a_manifest_does_not_name_are_not_served(served):
    port, found = served
    assert get(port, f"/models/{found[0].id}/secret.txt")[0] == 404
    assert get(port, f"/models/{found[0].id}/notes.json")[0] == 404
    assert get(port, "/models/nope/tiny.onnx")[0] == 404
    assert get(port, "/missing.js")[0] == 404


def test_needs_build_follows_sources(tmp_path):
    web = tmp_path / "web"
    (web / "src").mkdir(parents=True)
    (web / "src" / "a.ts").write_text("x")
    assert needs_build(web)  # never built
    (web / "dist").mkdir()
    (web / "dist" / "build.json").write_text("{}")
    assert not needs_build(web)
    import os
    stamp = (web / "dist" / "build.json").stat().st_mtime
    os.utime(web / "src" / "a.ts", (stamp + 10, stamp + 10))
    assert needs_build(web)


def test_cli_without_a_build_says_how(tmp_path, monkeypatch):
    from worldmodels.core.errors import UserError

    with pytest.raises(UserError, match="no built player"):
        make_server(0, [], dist=Path(tmp_path / "nodist"))


def test_a_flappy_manifest_serves_its_three_graphs(tmp_path):
    folder = tmp_path / "flappy"
    folder.mkdir()
    names = {"onnx": "f.onnx", "prefill_onnx": "f.prefill.onnx", "frame_onnx": "f.frame.onnx"}
    (folder / "f.json").write_text(json.dumps({**MANIFEST, "task": "flappy", "name": "f", **names}))
    for name in [*names.values(), "f.other.onnx"]:
        (folder / name).write_bytes(b"\x08\x07onnx-bytes")
    (model,) = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    assert set(model.files) == {"f.json", *names.values()}  # not f.other.onnx

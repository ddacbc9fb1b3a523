"""The player server (worldmodels/play.py): model discovery, what it serves, headers and MIME types, that no path
outside the player's files, the manifests' files and the allowed Flappy sprites is reachable, and that an installed
wheel serves the player it carries (or says in one line that it carries none)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from worldmodels import play
from worldmodels.play import ROOT, SPRITE_FILES, SPRITES, discover, make_server, needs_build, sprites_folder

# Valid manifests (the shipped ones, renamed): discovery checks them against the schema and warns about the others.
MANIFEST = {**json.loads((ROOT / "models" / "breakout" / "breakout.json").read_text()), "name": "tiny",
            "onnx": "tiny.onnx"}
FLAPPY = json.loads((ROOT / "models" / "flappy" / "flappy.json").read_text())


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
    sprites = tmp_path / "sprites"
    sprites.mkdir()
    for name in SPRITE_FILES:
        (sprites / name).write_bytes(b"\x89PNG " + name.encode())
    (sprites / "message.png").write_bytes(b"\x89PNG a sprite of the package the player does not use")
    (sprites / "notes.txt").write_text("not a sprite")
    found = discover(models_dir=tmp_path / "none", run_roots=(), extra=(models,))
    with running(make_server(0, found, dist=dist, quiet=True, sprites=sprites)) as port:
        yield port, found


@contextmanager
def running(server):
    """`server` serving in a thread; yields its port."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def get(port: int, path: str, method: str = "GET", host: str | None = None) -> tuple[int, dict, bytes]:
    """A raw request: the path goes out exactly as given (no client-side `..` normalization); `host` replaces the
    Host header http.client sends (127.0.0.1:port), "" sends none."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
    if host:
        conn.putheader("Host", host)
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
    (folder / "f.json").write_text(json.dumps({**FLAPPY, "name": "f", **names}))
    for name in [*names.values(), "f.other.onnx"]:
        (folder / name).write_bytes(b"\x08\x07onnx-bytes")
    (model,) = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    assert set(model.files) == {"f.json", *names.values()}  # not f.other.onnx


def test_a_gym_pixels_manifest_is_listed_and_serves_its_graph(tmp_path, capsys):
    """A gym_pixels export (the dreamed pixel game's model) is listed under its task with no warning, and serves its
    manifest and the graph it names, nothing else."""
    folder = tmp_path / "pixels"
    folder.mkdir()
    manifest = {**MANIFEST, "task": "gym_pixels", "name": "pong", "onnx": "pong.onnx", "num_actions": 3,
                "game": {"source": "gymnasium", "env_id": "ALE/Pong-v5", "env_kwargs": {}, "frame_skip": 4,
                         "sticky": 0.25},
                "start_frames": ["iVBORw0KGgo="]}
    (folder / "pong.json").write_text(json.dumps(manifest))
    for name in ("pong.onnx", "pong.other.onnx"):
        (folder / name).write_bytes(b"\x08\x07onnx-bytes")
    (model,) = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    assert capsys.readouterr().err == ""
    assert (model.task, model.files) == ("gym_pixels", ("pong.json", "pong.onnx"))
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>player</title>")
    with running(make_server(0, [model], dist=dist, quiet=True)) as port:
        status, _, body = get(port, "/models/index.json")
        assert status == 200 and [m["task"] for m in json.loads(body)["models"]] == ["gym_pixels"]
        assert get(port, f"/models/{model.id}/pong.json")[0] == 200
        assert get(port, f"/models/{model.id}/pong.onnx")[2] == b"\x08\x07onnx-bytes"
        assert get(port, f"/models/{model.id}/pong.other.onnx")[0] == 404


# --- The Flappy sprites of the installed flappy-bird-gymnasium


def test_the_allowed_sprites_and_their_index_are_served(served):
    port, _ = served
    status, headers, body = get(port, "/sprites/index.json")
    assert status == 200 and json.loads(body) == SPRITES
    status, headers, body = get(port, "/sprites/pipe-green.png")
    assert status == 200 and headers["content-type"] == "image/png" and body == b"\x89PNG pipe-green.png"
    assert headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/sprites/message.png", "/sprites/notes.txt", "/sprites/", "/sprites",
                                  "/sprites/x/base.png", "/sprites/../outside.txt", "/sprites/%2e%2e/outside.txt",
                                  "/sprites/BASE.PNG"])
def test_nothing_else_is_served_under_sprites(served, path):
    status, _, body = get(served[0], path)
    assert status in (403, 404), path
    assert b"\x89PNG" not in body and b"outside the served folders" not in body


def test_a_sprite_linked_out_of_its_folder_is_not_served(served, tmp_path):
    link = tmp_path / "sprites" / "base.png"
    link.unlink()
    link.symlink_to(tmp_path / "outside.txt")
    status, _, body = get(served[0], "/sprites/base.png")
    assert status == 404 and b"outside the served folders" not in body


def test_without_the_package_there_are_no_sprites(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html>")
    with running(make_server(0, [], dist=dist, quiet=True, sprites=None)) as port:
        for path in ("/sprites/index.json", "/sprites/base.png"):
            status, headers, _ = get(port, path)
            assert status == 404 and headers["content-type"].startswith("text/plain")  # the page falls back


def test_every_allowed_sprite_is_in_the_installed_package():
    folder = sprites_folder()
    assert folder is not None and folder.name == "sprites", "flappy-bird-gymnasium is a dependency: pip install -e ."
    assert all((folder / name).is_file() for name in SPRITE_FILES)


# --- Files reached through a symlink out of their folder


@pytest.mark.parametrize("target", ["outside", "other-dir", "/etc/passwd"])
def test_a_model_file_linked_out_of_its_folder_is_not_served(served, tmp_path, target):
    """The manifest names tiny.onnx; once it is a symlink to a file elsewhere, the server refuses it."""
    port, found = served
    other = tmp_path / "other" / "x.onnx"
    other.parent.mkdir()
    other.write_text("outside the served folders")
    dest = {"outside": tmp_path / "outside.txt", "other-dir": other, "/etc/passwd": Path("/etc/passwd")}[target]
    link = tmp_path / "models" / "tiny.onnx"
    link.unlink()
    link.symlink_to(dest)
    status, _, body = get(port, f"/models/{found[0].id}/tiny.onnx")
    assert status in (403, 404)
    assert b"outside the served folders" not in body and b"root:" not in body


def test_a_player_file_linked_out_of_dist_is_not_served(served, tmp_path):
    (tmp_path / "dist" / "leak.html").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "dist" / "passwd.js").symlink_to("/etc/passwd")
    for path in ("/leak", "/leak.html", "/passwd.js"):  # /leak is served as leak.html when that is a file
        status, _, body = get(served[0], path)
        assert status in (403, 404), path
        assert b"outside the served folders" not in body and b"root:" not in body


def test_discovery_skips_a_manifest_whose_files_link_out_of_its_folder(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("outside the served folders")
    (folder / "tiny.json").write_text(json.dumps(MANIFEST))
    (folder / "tiny.onnx").symlink_to(tmp_path / "outside.txt")
    assert discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,)) == []
    err = capsys.readouterr().err
    assert "tiny.json" in err and "tiny.onnx" in err and "outside" in err


# --- The Host header (DNS rebinding)


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LocalHost:{port}"])
def test_the_loopback_names_with_our_port_are_served(served, host):
    port, found = served
    assert get(port, "/models/index.json", host=host.format(port=port))[0] == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:{other}", "localhost",
                                  "127.0.0.1", "localhost:{port}.evil.example", "127.0.0.1.evil.example:{port}", ""])
def test_any_other_host_is_refused(served, host):
    """A DNS-rebinding page's requests carry its own name as Host: refused before any file is read."""
    port, found = served
    host = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    for path in ("/models/index.json", f"/models/{found[0].id}/tiny.onnx", "/", "/sprites/index.json",
                 "/sprites/base.png"):
        status, headers, body = get(port, path, host=host)
        assert status in (403, 421), (host, path)
        assert headers["content-type"].startswith("text/plain") and len(body) < 200
        assert found[0].id.encode() not in body and b"onnx-bytes" not in body and b"<title>" not in body


# --- Long paths


@pytest.mark.parametrize("path", ["/" + "a" * 8000, "/models/" + "x" * 8000, "/models/index.json?" + "q" * 8000])
def test_a_very_long_path_is_414_without_a_traceback(served, capsys, path):
    status, headers, body = get(served[0], path)
    assert status == 414 and headers["content-type"].startswith("text/plain")
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("path", ["/" + "a" * 300 + ".js", "/ort/" + "b" * 300, "/" + "c" * 2000])
def test_a_file_name_too_long_for_the_disk_is_404_without_a_traceback(served, capsys, path):
    assert get(served[0], path)[0] == 404
    assert "Traceback" not in capsys.readouterr().err


# --- Idle connections


def test_an_idle_connection_is_closed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(play, "IDLE_TIMEOUT_S", 0.3)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html>")
    with running(make_server(0, [], dist=dist)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            start = time.monotonic()
            try:
                data = sock.recv(1024)  # sends nothing: the server should hang up after its timeout
            except TimeoutError:
                pytest.fail("the server kept an idle connection open for 3 s")
            assert data == b"" and time.monotonic() - start < 2
        assert get(port, "/")[0] == 200  # a client that does send is served
    assert "timed out" not in capsys.readouterr().err  # an idle keep-alive connection closing is not an error


# --- --port


@pytest.fixture()
def no_work(monkeypatch):
    """build() and discover() fail the test: a bad --port must be refused before either runs."""
    def fail(*args, **kwargs):
        raise AssertionError("build or discovery ran before the port was checked")
    monkeypatch.setattr(play, "build", fail)
    monkeypatch.setattr(play, "discover", fail)


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_an_invalid_port_is_one_line_before_any_work(no_work, capsys, port):
    with pytest.raises(SystemExit) as exit_:
        play.main(["--port", port])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == f"error: --port {port}: must be 0..65535\n"


def test_a_busy_port_is_one_line_before_any_work(no_work, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            play.main(["--port", str(port)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == f"error: --port {port}: already in use; pick another (--port 0 picks a free one)\n"


def test_the_cli_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "worldmodels.play", "--no-build", "--newest", "0", "--port",
                                 str(port)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --port {port}: already in use; pick another "
                                                  "(--port 0 picks a free one)"]


# --- Broken manifests


def test_broken_manifests_are_skipped_with_a_warning_each(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.json").write_text(json.dumps(MANIFEST))
    (folder / "tiny.onnx").write_bytes(b"\x08\x07onnx-bytes")
    (folder / "truncated.json").write_text(json.dumps(MANIFEST)[:100])
    (folder / "list.json").write_text("[1, 2]")
    (folder / "other.json").write_text(json.dumps({"format": "something-else"}))
    (folder / "nested.json").write_text(json.dumps({**MANIFEST, "onnx": "../tiny.onnx"}))
    found = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    assert [m.name for m in found] == ["tiny"]  # the others are skipped, the good one still served
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4, lines
    for name, why in [("truncated.json", "not JSON"), ("list.json", "not a worldmodels manifest"),
                      ("other.json", "not a worldmodels manifest"), ("nested.json", "../tiny.onnx")]:
        (line,) = [line for line in lines if name in line]
        assert line.startswith("warning: ") and why in line and str(folder) in line


def test_a_manifest_the_player_will_refuse_is_listed_with_a_warning(tmp_path, capsys):
    """A worldmodels manifest that breaks the schema (here: a format version from the future) stays in the list, so
    the player can say what is wrong with it (web/e2e/browser.mjs checks that message), and the server warns."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "future.json").write_text(json.dumps({**MANIFEST, "format_version": 99}))
    (model,) = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: ") and "future.json" in line and "format_version" in line


# --- Agent policies


POLICY = json.loads((ROOT / "models" / "flappy_agent" / "policy.json").read_text())


def test_a_policy_is_listed_under_policies_and_serves_its_two_files(tmp_path, capsys):
    """A policy.json (worldmodels/dream/agent.py export_policy) beside its .onnx: listed under "policies" in the index,
    not among the models, and only its JSON and the graph it names are served; no warning."""
    folder = tmp_path / "models"
    (folder / "flappy_agent").mkdir(parents=True)
    (folder / "flappy_agent" / "policy.json").write_text(json.dumps(POLICY))
    (folder / "flappy_agent" / "policy.onnx").write_bytes(b"\x08\x07policy-bytes")
    (folder / "flappy_agent" / "policy.zip").write_bytes(b"sb3's own save: not served")
    (folder / "breakout").mkdir()
    (folder / "breakout" / "tiny.json").write_text(json.dumps(MANIFEST))
    found = discover(models_dir=folder, run_roots=())
    assert capsys.readouterr().err == ""
    assert sorted((m.kind, m.task, m.name) for m in found) == [("model", "breakout", "tiny"),
                                                               ("policy", "flappy", "flappy_agent")]
    (policy,) = [m for m in found if m.kind == "policy"]
    assert set(policy.files) == {"policy.json", "policy.onnx"} and "flappy agent: flappy_agent (shipped" in policy.label
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html>")
    with running(make_server(0, found, dist=dist, quiet=True)) as port:
        index = json.loads(get(port, "/models/index.json")[2])
        assert [m["name"] for m in index["models"]] == ["tiny"]
        assert [(p["id"], p["task"], p["manifest"]) for p in index["policies"]] == [
            (policy.id, "flappy", f"/models/{policy.id}/policy.json")]
        assert json.loads(get(port, index["policies"][0]["manifest"])[2]) == POLICY
        assert get(port, f"/models/{policy.id}/policy.onnx")[2] == b"\x08\x07policy-bytes"
        assert get(port, f"/models/{policy.id}/policy.zip")[0] == 404


def test_a_policy_the_player_will_refuse_is_listed_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "wide.json").write_text(json.dumps({**POLICY, "onnx": "wide.onnx", "input": {**POLICY["input"],
                                                                                           "shape": [1, 8]}}))
    (folder / "future.json").write_text(json.dumps({**POLICY, "format_version": 2}))
    (folder / "nested.json").write_text(json.dumps({**POLICY, "onnx": "../policy.onnx"}))
    found = discover(models_dir=tmp_path / "none", run_roots=(), extra=(folder,))
    assert sorted(m.name for m in found) == ["future", "wide"] and {m.kind for m in found} == {"policy"}
    lines = sorted(capsys.readouterr().err.strip().splitlines())
    assert len(lines) == 3, lines
    assert "future.json" in lines[0] and "format_version 2" in lines[0] and "the player will refuse it" in lines[0]
    assert "nested.json" in lines[1] and "skipped" in lines[1] and "../policy.onnx" in lines[1]
    assert "wide.json" in lines[2] and "the flappy agent needs [N, 12]" in lines[2]


# --- An installed wheel


def test_an_install_without_the_player_says_what_is_missing_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(play, "IN_CHECKOUT", False)
    monkeypatch.setattr(play, "DIST", tmp_path / "site-packages" / "worldmodels" / "player")
    with pytest.raises(SystemExit) as exit_:
        play.main(["--port", "0"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert line.startswith("error: this installation has no built web player") and "make play" in line
    assert str(play.DIST) in line


@pytest.mark.slow  # builds a wheel (and the player, with npm)
def test_a_wheel_serves_the_player_and_the_shipped_models(tmp_path):
    """`pip wheel .`, installed outside the checkout: `python -m worldmodels.play` from there serves the player and
    the shipped models the wheel carries (web/hatch_build.py), and the sprites of the installed package."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True,
                   timeout=600)
    (wheel,) = wheels.glob("worldmodels-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"worldmodels/player/index.html", "worldmodels/player/app.js", "worldmodels/player/flappy-worker.js",
            "worldmodels/player/ort/ort-wasm-simd-threaded.wasm", "worldmodels/models/flappy/flappy.frame.onnx",
            "worldmodels/models/breakout/breakout.onnx"} <= names
    assert not [n for n in names if n.endswith(".map")]
    assert wheel.stat().st_size < 30e6, f"the wheel grew to {wheel.stat().st_size / 1e6:.1f} MB"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}  # before the checkout's editable install on sys.path
    script = "import sys, worldmodels.play as p; print(p.__file__, flush=True); p.main(sys.argv[1:])"
    server = subprocess.Popen([sys.executable, "-c", script, "--port", "0", "--quiet", "--newest", "0"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout.readline().strip() == str(site / "worldmodels" / "play.py")
        lines = []
        for line in server.stdout:
            lines.append(line)
            if "serving the player on" in line:
                break
        port = int(lines[-1].split("127.0.0.1:")[1].split("/")[0])
        status, _, body = get(port, "/")
        assert status == 200 and b"/app.js" in body
        assert get(port, "/ort/ort-wasm-simd-threaded.wasm")[0] == 200
        models = json.loads(get(port, "/models/index.json")[2])["models"]
        assert sorted((m["task"], m["source"]) for m in models) == [("breakout", "shipped")] * 2 + [
            ("flappy", "shipped")] * 2
        status, _, body = get(port, models[0]["manifest"])
        assert status == 200 and json.loads(body)["task"] == models[0]["task"]
        assert get(port, "/sprites/index.json")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)

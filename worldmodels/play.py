"""Serve the web player with the shipped models and your newest exported runs.

    python -m worldmodels.play                 # or: make play; then open the printed URL
    python -m worldmodels.play --port 0 --models path/to/export   # any free port; extra model folders

From a clone it builds the player (`web/`, npm) when its sources are newer than `web/dist`; an installed wheel
carries the built player and the shipped models inside the package (`worldmodels/player/`, `worldmodels/models/`,
put there by `web/hatch_build.py`), and a wheel built without them stops in one line that says so. It serves on
127.0.0.1 only: the built player's files, `/models/index.json` (the models it found, and the agent policies under
"policies"), under `/models/<id>/` exactly the files each manifest names (its `.onnx`, the Flappy prefill and frame
`.onnx` and the manifest) or a policy's `policy.json` and the `.onnx` it names, and under
`/sprites/` the game's own Flappy sprites from the installed `flappy-bird-gymnasium` (only the names in `SPRITES`,
listed at `/sprites/index.json`; never copied into the repository). Nothing else on disk is reachable: a path with
`..`, a file outside `web/dist`, a file a manifest does not name or a sprite not in `SPRITES` gets 403/404.
Responses carry the cross-origin isolation headers (so onnxruntime-web may use two WASM threads) and correct MIME
types (`.wasm`, `.mjs`).
Checks: a Host other than 127.0.0.1, localhost or [::1] with our port gets 403 (DNS rebinding), a symlink out of
`web/dist`, its model's folder or the sprite folder 404, a path over 2,048 characters 414; idle connections close
after 10 s.

Models come from `models/` in the repo (shipped, with model cards), the newest exports under `outputs/` and
`multirun/` (`<run>/export/*.json`), and any `--models` folder. Other JSON there is skipped with a warning (under a run
folder, silently); a manifest breaking the schema is listed with a warning, so that the player says what is wrong.
Agent policies are found the same way: a `policy.json` ("format": "worldmodels-policy", written beside its
`policy.onnx` by `python -m worldmodels.dream.agent`, e.g. `models/flappy_agent/`) is listed under "policies" in the
index, and the player's "Agent plays" toggle plays the game of its task with it (web/src/flappy/agent.ts); one the
player will refuse (an unknown format version, task or tensor shape) is listed with a warning too.
Tests: python -m pytest tests/web/test_play.py tests/web/test_web.py
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.manifest import MANIFEST_FORMAT, SCHEMA_PATH, manifest_problem

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # the checkout, when this runs from a clone
WEB_DIR = ROOT / "web"  # the player's sources (a clone only)
IN_CHECKOUT = (WEB_DIR / "build.mjs").is_file()
# An installed wheel carries the built player and the shipped models in the package (web/hatch_build.py).
DIST = WEB_DIR / "dist" if IN_CHECKOUT else PACKAGE / "player"
MODELS_DIR = ROOT / "models" if IN_CHECKOUT else PACKAGE / "models"
HOST = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # the only Host names served (DNS rebinding)
MAX_PATH = 2048  # characters of the request target; longer gets 414
IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed
HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
MIME = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".map": "application/json", ".wasm": "application/wasm",
    ".onnx": "application/octet-stream", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon",
}
# The flappy-bird-gymnasium sprites the player draws, by role (the page reads this from /sprites/index.json); the only
# names served under /sprites/. The bird's frames are in the env's order (its `player_idx`: up, mid, down).
SPRITES = {
    "background": "background-day.png",
    "base": "base.png",
    "pipe": "pipe-green.png",
    "bird": ["yellowbird-upflap.png", "yellowbird-midflap.png", "yellowbird-downflap.png"],
    "digits": [f"{d}.png" for d in range(10)],
}
# Agent policies (worldmodels/dream/agent.py export_policy): policy.json beside the .onnx it names.
POLICY_FORMAT, POLICY_FORMAT_VERSION = "worldmodels-policy", 1
POLICY_TASKS = ("flappy", "breakout")
POLICY_SHAPES = {"flappy": ([12], 2)}  # a task's observation shape (after the batch axis) and action count
SPRITE_FILES = frozenset(n for v in SPRITES.values() for n in ([v] if isinstance(v, str) else v))
# What a rebuild depends on: newer than dist/build.json means stale.
BUILD_INPUTS = ("src", "public", "build.mjs", "package.json", "package-lock.json",
                "../worldmodels/core/manifest.schema.json")  # the player bundles the manifest schema


@dataclass
class Model:
    """One model the player may load: a manifest and the folder its files live in."""

    id: str
    task: str
    name: str
    source: str  # shipped | run | extra
    label: str
    manifest: str  # URL of the manifest
    mtime: float
    folder: Path
    files: tuple[str, ...]  # the only file names served under /models/<id>/
    kind: str = "model"  # model | policy (an agent's policy.json: listed under "policies" in the index)

    def entry(self) -> dict:
        data = asdict(self)
        del data["folder"], data["files"], data["kind"]
        return data


class Skipped(Exception):
    """Why a JSON file found by discovery is not listed; `other_json` when it is simply not a manifest."""

    def __init__(self, reason: str, other_json: bool = False):
        super().__init__(reason)
        self.other_json = other_json


def read_json(path: Path) -> dict:
    """The JSON object at `path`; Skipped for a file that is not JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise Skipped(f"unreadable ({err.strerror or err})") from err
    except ValueError as err:  # JSONDecodeError, and UnicodeDecodeError for a binary file
        raise Skipped(f"not JSON ({getattr(err, 'msg', None) or err})") from err
    if not isinstance(data, dict):
        raise Skipped(f"not a worldmodels manifest (a JSON {type(data).__name__}, not an object)", other_json=True)
    return data


def read_manifest(path: Path, data: dict | None = None) -> dict:
    """The worldmodels manifest at `path` (read already: `data`); Skipped for a file that is not JSON or is other
    JSON (eval summaries...)."""
    data = read_json(path) if data is None else data
    if data.get("format") != MANIFEST_FORMAT:
        raise Skipped(f"not a worldmodels manifest (format {data.get('format')!r}, not {MANIFEST_FORMAT!r})",
                      other_json=True)
    return data


def inside(path: Path, folder: Path) -> bool:
    """Whether `path`, symlinks resolved, lies inside `folder` (itself resolved)."""
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a name too long, a symlink loop
        return False


def model_from_manifest(path: Path, source: str, data: dict | None = None) -> Model:
    """The model the manifest at `path` (read already: `data`) describes; Skipped (with the reason) when it cannot be
    served."""
    data = read_manifest(path) if data is None else data
    names = [path.name] + [data[k] for k in ("onnx", "prefill_onnx", "frame_onnx") if isinstance(data.get(k), str)]
    folder = served_folder(path, names)
    ident = f"{source}-{path.stem}-{_digest(path)}"
    task, name = str(data.get("task", "?")), str(data.get("name", path.stem))
    where = path.parent.name if source == "shipped" else str(_short(path.parent))
    return Model(id=ident, task=task, name=name, source=source, label=f"{task}: {name} ({source}, {where})",
                 manifest=f"/models/{ident}/{path.name}", mtime=path.stat().st_mtime, folder=folder,
                 files=tuple(names))


def served_folder(path: Path, names: list[str]) -> Path:
    """The folder (resolved) of the JSON file `path` whose files `names` are served; Skipped when one is not a bare
    file name (a path, even in the same folder, is not served) or is a link out of the folder."""
    for n in names:
        if Path(n).name != n or n in ("", ".", "..") or "\\" in n or "\0" in n:
            raise Skipped(f"names {n!r}, not a file name in its folder")
    folder = path.parent.resolve()
    for n in names:
        if (path.parent / n).is_symlink() and not inside(path.parent / n, folder):
            raise Skipped(f"{n} is a link to a file outside {folder} (not served)")
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]


def policy_problem(data: dict) -> str | None:
    """Why the player will refuse this policy.json (None: it will load it); the player checks the same in
    web/src/shell/policy.ts."""
    if data.get("format_version") != POLICY_FORMAT_VERSION:
        return f"format_version {data.get('format_version')!r}, this player reads {POLICY_FORMAT_VERSION}"
    if data.get("task") not in POLICY_TASKS:
        return f"task {data.get('task')!r}, not one of {', '.join(POLICY_TASKS)}"
    for key in ("input", "output"):
        tensor = data.get(key)
        if not (isinstance(tensor, dict) and isinstance(tensor.get("name"), str) and isinstance(tensor.get("shape"),
                                                                                                 list)):
            return f'"{key}" must give the tensor\'s name and shape'
    if data["task"] in POLICY_SHAPES:
        observation, actions = POLICY_SHAPES[data["task"]]
        for key, want in (("input", observation), ("output", [actions])):
            if data[key]["shape"][1:] != want:
                need = ", ".join(map(str, want))
                return f"{key} shape {data[key]['shape']}, the {data['task']} agent needs [N, {need}]"
    return None


def policy_from_json(path: Path, source: str, data: dict) -> Model:
    """The agent policy the policy.json at `path` (read already: `data`) describes: served as its JSON and the .onnx
    it names; Skipped when it names no .onnx file in its folder."""
    if not isinstance(data.get("onnx"), str):
        raise Skipped('a policy that names no "onnx" file')
    folder = served_folder(path, [path.name, data["onnx"]])
    ident = f"{source}-{path.stem}-{_digest(path)}"
    default_name = path.parent.name if path.stem == "policy" else path.stem  # models/flappy_agent/policy.json
    task, name = str(data.get("task", "?")), str(data.get("name", default_name))
    where = path.parent.name if source == "shipped" else str(_short(path.parent))
    facts = [f"trained in {data['trained_in']}" if isinstance(data.get("trained_in"), str) else "",
             f"real mean score {data['real_mean_score']}" if isinstance(data.get("real_mean_score"), (int, float))
             else ""]
    label = f"{task} agent: {name} ({', '.join([source, *([where] if where != name else []), *filter(None, facts)])})"
    return Model(id=ident, task=task, name=name, source=source, label=label, manifest=f"/models/{ident}/{path.name}",
                 mtime=path.stat().st_mtime, folder=folder, files=(path.name, data["onnx"]), kind="policy")


def warn(path: Path, why: str) -> None:
    print(f"warning: {path}: {why}", file=sys.stderr, flush=True)


def models_in(paths, source: str) -> list[Model]:
    """The models among the JSON files `paths`, with a warning line for each one skipped (under a run folder, other
    JSON is expected and skipped silently) and for each manifest the player will refuse (listed: it says why)."""
    found = []
    for path in paths:
        try:
            data = read_json(path)
            if data.get("format") == POLICY_FORMAT:
                model, problem = policy_from_json(path, source, data), policy_problem(data)
            else:
                model = model_from_manifest(path, source, read_manifest(path, data))
                problem = manifest_problem(data)
                problem = problem and f"breaks {SCHEMA_PATH.name} ({problem})"
        except Skipped as why:
            if not (why.other_json and source == "run"):
                warn(path, f"skipped: {why}")
            continue
        if problem:
            warn(path, f"{problem}; listed, but the player will refuse it")
        found.append(model)
    return found


def _short(folder: Path) -> Path:
    try:
        return folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


def sprites_folder() -> Path | None:
    """The installed flappy-bird-gymnasium's sprite folder (resolved), found without importing the package (that
    would import pygame); None when the package or the folder is missing."""
    spec = importlib.util.find_spec("flappy_bird_gymnasium")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "assets" / "sprites"
        if folder.is_dir():
            return folder.resolve()
    return None


def discover(models_dir: Path = MODELS_DIR, run_roots: tuple[Path, ...] = (Path("outputs"), Path("multirun")),
             extra: tuple[Path, ...] = (), newest: int = 6) -> list[Model]:
    """Shipped models, then the `newest` exported runs (newest first), then the extra folders' manifests; agent
    policies (kind "policy") among them, found the same way."""
    for folder in extra:
        if not folder.is_dir():
            raise UserError(f"--models {folder}: not a folder")
    found = models_in(sorted(models_dir.glob("*/*.json")) if models_dir.is_dir() else [], "shipped")
    runs = models_in([p for root in run_roots if root.is_dir() for p in root.glob("**/export/*.json")], "run")
    found += sorted(runs, key=lambda m: -m.mtime)[:newest]
    for folder in extra:
        found += models_in(sorted(folder.glob("*.json")), "extra")
    return found


def needs_build(web_dir: Path = WEB_DIR) -> bool:
    stamp = web_dir / "dist" / "build.json"
    if not stamp.exists():
        return True
    built = stamp.stat().st_mtime
    for name in BUILD_INPUTS:
        path = web_dir / name
        files = path.rglob("*") if path.is_dir() else [path]
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


def build(web_dir: Path = WEB_DIR, force: bool = False) -> None:
    """`npm install` (when node_modules is missing) and `npm run build`, when the sources are newer than the build."""
    if not (force or needs_build(web_dir)):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise UserError("npm not found: the player is built with Node.js 20+ and npm "
                        "(Debian: apt-get install nodejs npm), or run with --no-build on an existing web/dist")
    steps = ([[npm, "install", "--no-audit", "--no-fund"]] if not (web_dir / "node_modules").is_dir() else [])
    for cmd in steps + [[npm, "run", "build"]]:
        print("$", " ".join(cmd[1:]), f"(in {web_dir})", flush=True)
        if subprocess.run(cmd, cwd=web_dir).returncode:
            raise UserError(f"`npm {' '.join(cmd[1:])}` failed in {web_dir} (see its output above)")


class PlayerHandler(BaseHTTPRequestHandler):
    """GET/HEAD only; serves dist files, the model index and the files manifests name. Nothing else."""

    server_version = "worldmodels-play"
    timeout = IDLE_TIMEOUT_S  # StreamRequestHandler puts it on the socket: an idle connection is closed

    def __init__(self, *args, dist: Path, models: list[Model], sprites: Path | None = None, quiet: bool = False,
                 timeout: float | None = None, **kwargs):
        self.dist, self.models, self.sprites, self.quiet = dist, {m.id: m for m in models}, sprites, quiet
        if timeout is not None:
            self.timeout = timeout
        super().__init__(*args, **kwargs)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)

    def log_error(self, format, *args):  # noqa: A002
        if not format.startswith("Request timed out"):  # an idle keep-alive connection closed: nothing went wrong
            super().log_error(format, *args)

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _host_ok(self) -> bool:
        """Whether the Host header names this server: a loopback name and our port (a port-less name means port 80).
        A DNS-rebinding page reaches us under its own name, so its requests are refused."""
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        return host in {f"{name}:{port}" for name in LOOPBACK_NAMES} or port == 80 and host in LOOPBACK_NAMES

    def _serve(self, body: bool) -> None:
        if not self._host_ok():
            port = self.server.server_address[1]
            return self._error(HTTPStatus.FORBIDDEN, f"Host header refused: open http://{HOST}:{port}/")
        if len(self.path) > MAX_PATH:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_URI_TOO_LONG, f"request path over {MAX_PATH} characters")
        raw = urlsplit(self.path).path
        path = unquote(raw)
        parts = path.split("/")
        if not path.startswith("/") or any(p in ("..", ".") or "\\" in p or "\0" in p for p in parts):
            return self._error(HTTPStatus.FORBIDDEN, "path refused")
        if path == "/models/index.json":
            listed = self.models.values()
            data = json.dumps({"models": [m.entry() for m in listed if m.kind == "model"],
                               "policies": [m.entry() for m in listed if m.kind == "policy"]}, indent=1).encode()
            return self._send(data, MIME[".json"], body)
        if parts[1] == "sprites":
            if self.sprites is None:
                return self._error(HTTPStatus.NOT_FOUND, "flappy-bird-gymnasium's sprites are not installed")
            if path == "/sprites/index.json":
                return self._send(json.dumps(SPRITES).encode(), MIME[".json"], body)
            if len(parts) != 3 or parts[2] not in SPRITE_FILES:
                return self._error(HTTPStatus.NOT_FOUND, "no such sprite")
            return self._file([self.sprites / parts[2]], self.sprites, body)
        if parts[1] == "models":
            model = self.models.get(parts[2]) if len(parts) == 4 else None
            if model is None or parts[3] not in model.files:
                return self._error(HTTPStatus.NOT_FOUND, "no such model file")
            return self._file([model.folder / parts[3]], model.folder, body)
        if path.endswith("/") and path != "/":
            return self._error(HTTPStatus.FORBIDDEN, "path refused")
        target = self.dist / ("index.html" if path == "/" else path.lstrip("/"))
        # /bench is bench.html when that is a file
        return self._file([target.with_suffix(".html"), target] if target.suffix == "" else [target], self.dist, body)

    def _file(self, paths: list[Path], root: Path, body: bool) -> None:
        """The first of `paths` that, symlinks resolved, is a file inside `root` (resolved); else 404, nothing read."""
        for path in paths:
            try:
                target = path.resolve()
                if not (target.is_relative_to(root) and target.is_file()):
                    continue
                data = target.read_bytes()
            except (OSError, RuntimeError):  # a name too long for the disk, a symlink loop, a file gone since
                continue
            return self._send(data, MIME.get(target.suffix, "application/octet-stream"), body)
        return self._error(HTTPStatus.NOT_FOUND, "not found")

    def _send(self, data: bytes, mime: str, body: bool, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(data)))
        for key, value in HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, status: HTTPStatus, text: str) -> None:
        self._send(f"{status.value} {text}\n".encode(), "text/plain; charset=utf-8", True, status)


def check_dist(dist: Path) -> None:
    if (dist / "index.html").is_file():
        return
    if not IN_CHECKOUT and dist == DIST:
        raise UserError(f"this installation has no built web player ({dist} is missing: the wheel was built without "
                        "npm); run from a clone of the repository (make play), or build the wheel there with Node.js "
                        "and npm installed (pip wheel .)")
    raise UserError(f"{dist} has no built player: run without --no-build (needs npm) or `cd web && npm run build`")


def listen(port: int) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer bound to 127.0.0.1:port that serves nothing yet (see `serve`); a UserError for a port out
    of range or one we cannot listen on."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: must be 0..65535")
    try:
        return ThreadingHTTPServer((HOST, port), PlayerHandler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"--port {port}: already in use; pick another (--port 0 picks a free one)") from err
        raise UserError(f"--port {port}: cannot listen on {HOST}:{port} ({err.strerror or err}); pick another "
                        "(--port 0 picks a free one)") from err


def serve(server: ThreadingHTTPServer, models: list[Model], dist: Path = DIST, quiet: bool = False,
          timeout: float | None = None, sprites: Path | None = None) -> ThreadingHTTPServer:
    """`server` set to serve the player in `dist`, `models` and the `SPRITES` in the folder `sprites` (None: no
    sprites; `main` passes `sprites_folder()`); `timeout` (default IDLE_TIMEOUT_S) closes idle connections."""
    check_dist(dist)
    server.RequestHandlerClass = partial(PlayerHandler, dist=dist.resolve(), models=models,
                                         sprites=sprites.resolve() if sprites else None, quiet=quiet,
                                         timeout=IDLE_TIMEOUT_S if timeout is None else timeout)
    return server


def make_server(port: int, models: list[Model], dist: Path = DIST, quiet: bool = False,
                timeout: float | None = None, sprites: Path | None = None) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1:port (0 = any free port) serving the player."""
    check_dist(dist)
    return serve(listen(port), models, dist, quiet, timeout, sprites)


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.play", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--models", type=Path, action="append", default=[], help="extra folder of exported models")
    parser.add_argument("--newest", type=int, default=6, help="how many of the newest exported runs to list")
    parser.add_argument("--no-build", action="store_true", help="serve web/dist as it is (no npm; an installed "
                        "wheel never builds)")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    args = parser.parse_args(argv)

    if not IN_CHECKOUT:
        check_dist(DIST)  # a wheel without the player says so before anything else
    server = listen(args.port)  # a busy or invalid port says so before minutes of npm
    try:
        if IN_CHECKOUT and not args.no_build:
            build()
        models = discover(extra=tuple(args.models), newest=args.newest)
        sprites = sprites_folder()
        serve(server, models, dist=DIST, quiet=args.quiet, sprites=sprites)
        host, port = server.server_address[:2]
        for m in models:
            print(f"  {m.kind} {m.label}")
        if sprites is None:
            print("  no Flappy sprites (flappy-bird-gymnasium is not installed): Flappy is drawn schematically")
        if not models:
            print("  no models found: export one (python -m worldmodels.export run/checkpoints/last.ckpt) or add "
                  "--models DIR", flush=True)
        print(f"serving the player on http://{host}:{port}/  (benchmarks: http://{host}:{port}/bench)  Ctrl-C stops",
              flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

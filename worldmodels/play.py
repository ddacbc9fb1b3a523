"""Serve the web player with the shipped models and your newest exported runs.

    python -m worldmodels.play                 # or: make play; then open the printed URL
    python -m worldmodels.play --port 0 --models path/to/export   # any free port; extra model folders

It builds the player (`web/`, npm) when its sources are newer than `web/dist`, then serves on 127.0.0.1 only:
the built player's files, `/models/index.json` (the models it found) and, under `/models/<id>/`, exactly the files
each manifest names (its `.onnx`, the Flappy prefill and frame `.onnx` and the manifest). Nothing else on disk is
reachable: a path with `..`, a file outside `web/dist` or a file a manifest does not name gets 403/404. Responses
carry the cross-origin isolation headers (so onnxruntime-web may use two WASM threads) and correct MIME types (`.wasm`,
`.mjs`).

Models come from `models/` in the repo (shipped, with model cards), the newest exports under `outputs/` and
`multirun/` (`<run>/export/*.json`), and any `--models` folder.
Tests: python -m pytest tests/test_play.py tests/test_web.py
"""

from __future__ import annotations

import argparse
import hashlib
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

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"
MANIFEST_FORMAT = "worldmodels-manifest"
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
# What a rebuild depends on: newer than dist/build.json means stale.
BUILD_INPUTS = ("src", "public", "build.mjs", "package.json", "package-lock.json")


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

    def entry(self) -> dict:
        data = asdict(self)
        del data["folder"], data["files"]
        return data


def read_manifest(path: Path) -> dict | None:
    """A worldmodels manifest at `path`, or None for any other JSON (eval summaries, configs...)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    return data


def model_from_manifest(path: Path, source: str) -> Model | None:
    data = read_manifest(path)
    if data is None:
        return None
    names = [path.name] + [data[k] for k in ("onnx", "prefill_onnx", "frame_onnx") if isinstance(data.get(k), str)]
    # a manifest naming a path (not a bare file name) in the same folder is not served
    if any(Path(n).name != n or n in ("", ".", "..") for n in names):
        return None
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    ident = f"{source}-{path.stem}-{digest}"
    task, name = str(data.get("task", "?")), str(data.get("name", path.stem))
    where = path.parent.name if source == "shipped" else str(_short(path.parent))
    return Model(id=ident, task=task, name=name, source=source, label=f"{task}: {name} ({source}, {where})",
                 manifest=f"/models/{ident}/{path.name}", mtime=path.stat().st_mtime, folder=path.parent.resolve(),
                 files=tuple(names))


def _short(folder: Path) -> Path:
    try:
        return folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


def discover(models_dir: Path = ROOT / "models", run_roots: tuple[Path, ...] = (Path("outputs"), Path("multirun")),
             extra: tuple[Path, ...] = (), newest: int = 6) -> list[Model]:
    """Shipped models, then the `newest` exported runs (newest first), then the extra folders' manifests."""
    found: list[Model] = []
    for path in sorted(models_dir.glob("*/*.json")) if models_dir.is_dir() else []:
        found += filter(None, [model_from_manifest(path, "shipped")])
    runs = [m for root in run_roots if root.is_dir() for p in root.glob("**/export/*.json")
            for m in [model_from_manifest(p, "run")] if m]
    found += sorted(runs, key=lambda m: -m.mtime)[:newest]
    for folder in extra:
        if not folder.is_dir():
            raise UserError(f"--models {folder}: not a folder")
        found += filter(None, (model_from_manifest(p, "extra") for p in sorted(folder.glob("*.json"))))
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

    def __init__(self, *args, dist: Path, models: list[Model], quiet: bool = False, **kwargs):
        self.dist, self.models, self.quiet = dist, {m.id: m for m in models}, quiet
        super().__init__(*args, **kwargs)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        raw = urlsplit(self.path).path
        path = unquote(raw)
        parts = path.split("/")
        if not path.startswith("/") or any(p in ("..", ".") or "\\" in p or "\0" in p for p in parts):
            return self._error(HTTPStatus.FORBIDDEN, "path refused")
        if path == "/models/index.json":
            data = json.dumps({"models": [m.entry() for m in self.models.values()]}, indent=1).encode()
            return self._send(data, MIME[".json"], body)
        if parts[1] == "models":
            model = self.models.get(parts[2]) if len(parts) == 4 else None
            if model is None or parts[3] not in model.files:
                return self._error(HTTPStatus.NOT_FOUND, "no such model file")
            return self._file(model.folder / parts[3], body)
        target = (self.dist / ("index.html" if path == "/" else path.lstrip("/"))).resolve()
        if path.endswith("/") and path != "/" or not target.is_relative_to(self.dist):
            return self._error(HTTPStatus.FORBIDDEN, "path refused")
        if target.suffix == "" and target.with_suffix(".html").is_file():
            target = target.with_suffix(".html")  # /bench -> bench.html
        return self._file(target, body)

    def _file(self, path: Path, body: bool) -> None:
        if not path.is_file():
            return self._error(HTTPStatus.NOT_FOUND, "not found")
        return self._send(path.read_bytes(), MIME.get(path.suffix, "application/octet-stream"), body)

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


def make_server(port: int, models: list[Model], dist: Path = WEB_DIR / "dist", quiet: bool = False):
    """A ThreadingHTTPServer on 127.0.0.1:port (0 = any free port) serving the player."""
    if not (dist / "index.html").is_file():
        raise UserError(f"{dist} has no built player: run without --no-build (needs npm) or `cd web && npm run build`")
    handler = partial(PlayerHandler, dist=dist.resolve(), models=models, quiet=quiet)
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--models", type=Path, action="append", default=[], help="extra folder of exported models")
    parser.add_argument("--newest", type=int, default=6, help="how many of the newest exported runs to list")
    parser.add_argument("--no-build", action="store_true", help="serve web/dist as it is (no npm)")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    args = parser.parse_args(argv)

    if not args.no_build:
        build()
    models = discover(extra=tuple(args.models), newest=args.newest)
    server = make_server(args.port, models, quiet=args.quiet)
    host, port = server.server_address[:2]
    for m in models:
        print(f"  model {m.label}")
    if not models:
        print("  no models found: export one (python -m worldmodels.export run/checkpoints/last.ckpt) or add "
              "--models DIR", flush=True)
    print(f"serving the player on http://{host}:{port}/  (benchmarks: http://{host}:{port}/bench)  Ctrl-C stops",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

"""The web player (web/): TypeScript type check, its unit tests (simulator golden traces, sampler and decoder parity
with the Python references, manifest validation) and the browser tests in real headless Chromium.

These need Node.js/npm (web/node_modules is installed by `make test`) and, for the browser tests, Debian's chromium
at /usr/bin/chromium (`make test` installs it with apt-get). Missing tools fail with the command that installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodels.play import WEB_DIR, build

pytestmark = pytest.mark.slow  # TypeScript type check, vitest and headless Chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = WEB_DIR / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def npx(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["npx", "--no-install", *args], cwd=WEB_DIR, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def web_built():
    if shutil.which("npm") is None:
        pytest.fail("npm not found: install Node.js 20+ and npm (Debian: apt-get install nodejs npm), then make test")
    build()
    return WEB_DIR / "dist"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "web"))
    import web_fixtures

    return web_fixtures.write_all(tmp_path_factory.mktemp("web-fixtures"))


def test_typescript_type_checks(web_built):
    result = npx("tsc", "--noEmit", "-p", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_typescript_unit_tests(web_built, fixtures):
    result = npx("vitest", "run", env={"WM_FIXTURES": str(fixtures)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "failed" not in output.split("Test Files")[-1].split("\n")[0], output[-3000:]


def bad_models(folder: Path, good_manifest: Path) -> Path:
    """A corrupt ONNX file behind a valid manifest, and a manifest with a format version from the future."""
    manifest = json.loads(good_manifest.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    corrupt = {**manifest, "name": "corrupt", "onnx": "corrupt.onnx"}
    (folder / "corrupt.json").write_text(json.dumps(corrupt))
    (folder / "corrupt.onnx").write_bytes(b"this is not an onnx file" * 100)
    future = {**manifest, "name": "future", "onnx": "future.onnx", "format_version": 99}
    (folder / "future.json").write_text(json.dumps(future))
    (folder / "future.onnx").write_bytes((good_manifest.parent / manifest["onnx"]).read_bytes())
    return folder


def test_browser(web_built, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: apt-get install chromium (make test does it)")
    shipped = sorted((ROOT / "models").glob("breakout/*.json"))
    assert shipped, "the browser tests play the shipped models in models/ (git checkout models/)"
    extra = bad_models(tmp_path / "bad", shipped[0])
    server = subprocess.Popen([sys.executable, "-m", "worldmodels.play", "--no-build", "--port", "0", "--quiet",
                               "--newest", "0", "--models", str(extra)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in server.stdout:
            if "serving the player on" in line:
                url = line.split(" on ")[1].split()[0]
                break
        assert url, "the player server did not start"
        ARTIFACTS.mkdir(exist_ok=True)
        sys.path.insert(0, str(ROOT / "tests" / "web"))
        import web_fixtures

        sprites = web_fixtures.write_flappy_sprites(tmp_path / "sprites.json")
        result = subprocess.run(["node", "e2e/browser.mjs", "--url", url, "--artifacts", str(ARTIFACTS),
                                 "--sprite-reference", str(sprites)], cwd=WEB_DIR, capture_output=True, text=True,
                                timeout=600)
        print(result.stdout)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
        for name in ("breakout.png", "flappy-start.png", "flappy.png", "flappy-game-over.png"):
            assert (ARTIFACTS / name).stat().st_size > 1000, f"screenshot {name} missing"
    finally:
        server.terminate()
        server.wait(timeout=10)

"""The web player (web/): TypeScript type check, its unit tests (simulator golden traces, sampler and decoder parity
with the Python references, manifest validation) and the browser tests in real headless Chromium.

These need Node.js/npm (web/node_modules is installed by `make test`) and, for the browser tests, Debian's chromium
at /usr/bin/chromium (`make test` installs it with apt-get). Missing tools fail with the command that installs them.
The fixtures (tests/web/web_fixtures.py) include a real `task=gym_pixels debug=smoke` training run, whose export the
unit tests check and the browser tests play as the dreamed pixel game.
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


def agent_policies(folder: Path) -> Path:
    """Two Flappy policies beside the shipped one: "hover" (a one-layer graph: flap while the bird is in the lower
    half of the screen, logits (0.5, bird y / 512)), so that the agent's flaps are many whatever the shipped
    policy's skill, and "wide" (an observation of 8 numbers), which the player refuses in one line."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((12, 2), np.float32)
    weights[9, 1] = 1.0  # bird y / 512
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "w"], ["z"]), helper.make_node("Add", ["z", "b"], ["logits"])], "hover",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([0.5, 0.0], np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hover.onnx").write_bytes(model.SerializeToString())
    policy = json.loads((ROOT / "models" / "flappy_agent" / "policy.json").read_text())
    (folder / "hover.json").write_text(json.dumps({**policy, "onnx": "hover.onnx", "name": "hover"}))
    (folder / "wide.json").write_text(json.dumps({**policy, "onnx": "hover.onnx", "name": "wide",
                                                  "input": {**policy["input"], "shape": [1, 8]}}))
    return folder


def check_agent_traces(artifacts: Path, policies: dict[str, Path]) -> str:
    """The agent games web/e2e/browser.mjs recorded (`flappy-agent-<policy>.json`) replayed in Python: each agent
    frame's observation is `pipes_ahead_first(DreamGame.observation())` of the frames so far, its logits are
    onnxruntime's on the policy graph, its action their argmax, and that action is the one the decoder was fed."""
    import numpy as np
    import onnxruntime

    from worldmodels.dream.flappy import DreamGame
    from worldmodels.flappy.collector import pipes_ahead_first
    from worldmodels.flappy.tokens import TokenSpec

    spec = TokenSpec.from_json(json.loads((ROOT / "models" / "flappy" / "flappy.json").read_text())["token_spec"])
    report = []
    for name, onnx_path in policies.items():
        trace = json.loads((artifacts / f"flappy-agent-{name}.json").read_text())
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        checked = flaps = 0
        for g, game_trace in enumerate(trace["games"]):
            game = DreamGame(spec, max_frames=10**6)
            game.start(np.asarray(game_trace["context"], np.int64))
            for f, frame in enumerate(game_trace["frames"]):
                where = f"{name} policy, game {g}, frame {f}"
                assert frame["fed"] == frame["action"], f"{where}: fed {frame['fed']}, played {frame['action']}"
                agent = frame["agent"]
                if agent is not None:
                    obs = pipes_ahead_first(game.observation())
                    np.testing.assert_allclose(agent["obs"], obs, rtol=0, atol=1e-9, err_msg=where)
                    logits = session.run(None, {"obs": obs[None].astype(np.float32)})[0][0]
                    np.testing.assert_allclose(agent["logits"], logits, rtol=0, atol=1e-4, err_msg=where)
                    if abs(logits[0] - logits[1]) > 1e-4:
                        assert agent["action"] == int(np.argmax(logits)), where
                    assert frame["action"] == agent["action"], where
                    checked += 1
                    flaps += agent["action"]
                game.advance(frame["action"], np.asarray(frame["tokens"], np.int64))
        assert checked > 0, f"no agent frames recorded with the {name} policy"
        report.append(f"{name}: {checked} agent frames ({flaps} flaps) in {len(trace['games'])} game(s) match Python")
    return "; ".join(report)


def test_browser(web_built, fixtures, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: apt-get install chromium (make test does it)")
    shipped = sorted((ROOT / "models").glob("breakout/*.json"))
    assert shipped, "the browser tests play the shipped models in models/ (git checkout models/)"
    extra = agent_policies(bad_models(tmp_path / "bad", shipped[0]))
    assert (ROOT / "models" / "flappy_agent" / "policy.json").is_file(), "the browser tests play the shipped policy"
    pixels = fixtures / "gym_pixels"  # a real task=gym_pixels debug=smoke export (web_fixtures.write_gym_pixels)
    server = subprocess.Popen([sys.executable, "-m", "worldmodels.play", "--no-build", "--port", "0", "--quiet",
                               "--newest", "0", "--models", str(extra), "--models", str(pixels)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        for stale in ARTIFACTS.glob("flappy-agent-*.json"):
            stale.unlink()
        result = subprocess.run(["node", "e2e/browser.mjs", "--url", url, "--artifacts", str(ARTIFACTS),
                                 "--sprite-reference", str(sprites),
                                 "--pixels-reference", str(pixels / "start_frames.json")], cwd=WEB_DIR,
                                capture_output=True, text=True, timeout=600)
        print(result.stdout)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
        for name in ("breakout.png", "pixels.png", "flappy-start.png", "flappy.png", "flappy-game-over.png",
                     "flappy-agent.png"):
            assert (ARTIFACTS / name).stat().st_size > 1000, f"screenshot {name} missing"
        print(check_agent_traces(ARTIFACTS, {"shipped": ROOT / "models" / "flappy_agent" / "policy.onnx",
                                             "hover": extra / "hover.onnx"}))
    finally:
        server.terminate()
        server.wait(timeout=10)

"""The train command answers --help, --cfg and bad input without loading torch or Lightning (seconds, not tens of
seconds), and two runs started in the same second get separate run folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worldmodels import train

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "lightning", "onnx", "onnxruntime")

PROBE = """
import importlib, sys
main = importlib.import_module("worldmodels.{command}").main
sys.argv = ["worldmodels.{command}", *{argv!r}]
try:
    main()
except SystemExit:
    pass
print("loaded:", *[m for m in {heavy!r} if m in sys.modules])
"""


def loaded(command: str, argv: list[str]) -> str:
    """The heavy modules `python -m worldmodels.<command> <argv>` had imported when it answered."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(command=command, argv=argv, heavy=HEAVY)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--help"], ["--cfg", "job"], ["model.widht=3"], ["model.width=-3"],
                                  ["task=flappy", "data.window_frames=999"],
                                  ["model=fast_denoiser", "model.widths=[8,8,8,8,8,8,8,8]",
                                   "model.blocks=[1,1,1,1,1,1,1,1]"]],
                         ids=["help", "cfg_job", "typo", "range", "flappy_check", "too_deep"])
def test_train_answers_without_importing_torch_or_lightning(argv):
    assert loaded("train", argv) == "loaded:"


@pytest.mark.parametrize("command", ["export", "evaluate", "bench", "compare", "play", "collect", "record"])
def test_every_commands_help_is_light(command):
    assert loaded(command, ["--help"]) == "loaded:"


def test_help_lists_the_groups_and_the_config_with_overrides(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["worldmodels.train", "--help", "model.width=7"])
    train.main()
    out = capsys.readouterr().out
    assert "python -m worldmodels.train debug=smoke" in out
    assert "model: fast_denoiser, tiny_denoiser, tiny_denoiser_cpu, token_transformer" in out
    assert "experiment: atari_breakout, breakout_cpu, breakout_fast" in out
    assert "schema" not in out.split("== Config ==")[0]  # the registered schemas are not choices
    assert "  width: 7\n" in out  # the overrides are composed in


def test_help_with_a_bad_override_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["worldmodels.train", "--help", "model.widht=7"])
    with pytest.raises(SystemExit):
        train.main()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: model.widht: unknown key")


RUN_DIR = """
from hydra import compose, initialize_config_dir
from worldmodels.core.config import config_dir
with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
    print(compose("train", return_hydra_config=True).hydra.run.dir)
"""


def test_run_folders_carry_the_process_id():
    """`hydra.run.dir` composed as Hydra composes it, in two processes at once: the same second, two folders."""
    procs = [subprocess.Popen([sys.executable, "-c", RUN_DIR], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    dirs = []
    for proc in procs:
        dirs.append(proc.communicate(timeout=120)[0].strip())
        assert dirs[-1].startswith("outputs/breakout/") and dirs[-1].endswith(f"-{proc.pid}"), dirs[-1]
    assert dirs[0] != dirs[1]


@pytest.mark.slow
def test_two_runs_started_together_keep_all_their_files(tmp_path):
    """Two real runs started at once from the same folder: each has its own run folder with every file."""
    cmd = [sys.executable, "-m", "worldmodels.train", "debug=smoke", "logger=csv"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    runs = sorted((tmp_path / "outputs" / "breakout").iterdir())
    assert len(runs) == 2
    for run, proc in zip(sorted(runs, key=lambda r: int(r.name.rsplit("-", 1)[1])),
                         sorted(procs, key=lambda p: p.pid), strict=True):
        assert run.name.endswith(f"-{proc.pid}")
        for name in ("summary.json", "export/breakout.onnx", "export/breakout.json", "checkpoints/last.ckpt",
                     ".hydra/config.yaml", "train.log", "csv/metrics.csv"):
            assert (run / name).is_file(), f"{run.name} lacks {name}"
        assert f"run directory: {run}" in (run / "train.log").read_text()  # its log is its own

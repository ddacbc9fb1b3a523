"""Every command is a console script of the installed package and says its own name in its usage line."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def console_scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts] (read by hand: tomllib needs Python 3.11, the package supports 3.10)."""
    section = (ROOT / "pyproject.toml").read_text().split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.split("=", 1) for line in section.splitlines() if "=" in line and not line.startswith("#"))
    return {name.strip(): target.strip().strip('"') for name, target in pairs}


SCRIPTS = console_scripts()
COMMANDS = ("train", "export", "evaluate", "bench", "compare", "play", "collect", "record")


def test_every_command_is_a_console_script():
    assert sorted(SCRIPTS) == sorted(f"worldmodels-{c}" for c in COMMANDS)
    for script, target in SCRIPTS.items():
        module, function = target.split(":")
        assert module == f"worldmodels.{script.removeprefix('worldmodels-')}"
        assert callable(getattr(importlib.import_module(module), function))


def test_the_installed_scripts_are_there():
    bin_dir = Path(sys.executable).parent
    missing = [s for s in SCRIPTS if not (bin_dir / s).is_file()]
    assert missing == [], f"not installed next to {sys.executable}: reinstall with pip install -e ."


@pytest.mark.parametrize("command", ["export", "evaluate", "bench", "compare", "play"])
def test_usage_names_the_command_a_user_typed(command, capsys):
    main = importlib.import_module(f"worldmodels.{command}").main
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: python -m worldmodels.{command} ")


def test_a_console_script_runs_the_command():
    script = Path(sys.executable).parent / "worldmodels-compare"
    result = subprocess.run([str(script), "/no/such/sweep"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1

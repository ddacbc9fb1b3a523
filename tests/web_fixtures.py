"""Parity fixtures for the web player's TypeScript unit tests: small exported models plus the Python reference's
outputs for fixed inputs, so the TS sampler and decoder can be pinned to `worldmodels/sampling.py` and
`worldmodels/token_sampling.py`.

    python tests/web_fixtures.py OUT_DIR          # then: cd web && WM_FIXTURES=OUT_DIR npx vitest run

tests/test_web.py writes them into a temporary folder for every run, so the two sides cannot drift apart unnoticed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_breakout(out: Path) -> None:
    """A small random-init Breakout export and the reference sampler's outputs (written by the breakout part)."""
    raise NotImplementedError


def write_flappy(out: Path) -> None:
    """A small random-init Flappy export and the reference decoder's frames (written by the flappy part)."""
    raise NotImplementedError


def write_all(out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_breakout(out / "breakout")
    write_flappy(out / "flappy")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/web_fixtures.py OUT_DIR")
    print(write_all(Path(sys.argv[1])))

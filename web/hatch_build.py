"""Puts the web player and the shipped models into the wheel, so that `worldmodels-play` works from an installed wheel:
web/dist (the built player, without its source maps) goes to `worldmodels/player/`, models/ to `worldmodels/models/`
(worldmodels/play.py looks there when it does not run from a clone).

pyproject.toml names this file as hatchling's custom build hook; it runs on `pip wheel .` or `python -m build`:

    pip wheel --no-deps -w dist/ .

With npm and web/node_modules present it builds the player first (`npm run build`), so the wheel holds the player of
its own sources; without them it packs web/dist as it is, and with no web/dist at all the wheel has no player (its
`worldmodels-play` then says so in one line). Editable installs take nothing: they run from the clone.
Tested by tests/web/test_play.py::test_a_wheel_serves_the_player_and_the_shipped_models.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class PlayerInWheel(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        web, dist = root / "web", root / "web" / "dist"
        npm = shutil.which("npm")
        if npm and (web / "node_modules").is_dir():
            subprocess.run([npm, "run", "build"], cwd=web, check=True, stdout=subprocess.DEVNULL)
        elif (dist / "index.html").is_file():
            self.app.display_warning(f"no npm or {web / 'node_modules'}: packing {dist} as it is (not rebuilt)")
        if (dist / "index.html").is_file():
            for path in sorted(dist.rglob("*")):
                if path.is_file() and path.suffix != ".map":  # the maps double the player's size
                    build_data["force_include"][str(path)] = f"worldmodels/player/{path.relative_to(dist).as_posix()}"
        else:
            self.app.display_warning(f"no built player in {dist} (needs Node.js and npm): this wheel's "
                                     "worldmodels-play will say so")
        models = root / "models"
        for path in sorted(models.rglob("*")):
            if path.is_file():
                build_data["force_include"][str(path)] = f"worldmodels/models/{path.relative_to(models).as_posix()}"

"""Build the Flappy data caches outside training: the PPO player and the recorded episodes, for a run's config.

    python -m worldmodels.collect data.collector.episodes=2000          # the run's own overrides (task=flappy)
    python -m worldmodels.collect experiment=flappy_fast

Useful before a multi-GPU run, or to see the player's scores first; training then finds both in the cache
(`paths.cache_dir`, keyed by the collector config), so nothing is built twice.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from worldmodels.core.config import compose_config
from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.tasks import validate


@one_line_errors
def main(overrides: list[str] | None = None) -> None:
    """`overrides`: Hydra overrides of the run whose data to build (default: the command line's)."""
    overrides = sys.argv[1:] if overrides is None else overrides
    if any(a in ("-h", "--help") for a in overrides):
        print(__doc__.strip())
        return
    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise UserError(f"{flags[0]}: collect takes only Hydra overrides (key=value) and --help")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run = validate(compose_config(["task=flappy", *overrides]))
    from worldmodels.flappy.collector import ensure_episodes  # SB3 and the game: seconds that --help skips

    store = ensure_episodes(run.data.collector, Path(run.paths.cache_dir), run.seed)
    print(f"{store.directory}: {store.num_episodes} episodes, {store.manifest['frames']} frames")


if __name__ == "__main__":
    main()

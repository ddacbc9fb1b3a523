"""The gym_pixels task's config schemas: where its episodes come from (a gymnasium env, or a local Minari dataset).

The model and objective are Breakout's (`worldmodels.breakout.config`: `tiny_denoiser` / `fast_denoiser`,
`diffusion`), with one action plane per action of the game instead of Breakout's three. Light on purpose (no torch,
no gymnasium): `worldmodels.tasks.register_schemas` registers `SCHEMAS` before every composition.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from worldmodels.breakout.config import (
    METRICS as BREAKOUT_METRICS,
)
from worldmodels.breakout.config import (
    DenoiserConfig,
    DiffusionConfig,
    FastDenoiserConfig,
)
from worldmodels.core.schema import ConfigError, require

MAX_ACTIONS = 32  # action planes beyond this would outweigh the 16 frame and noise channels


@dataclass
class PixelsPolicyConfig:
    """The data's player: random actions, each held for a while; optionally an SB3 policy for some episodes.

    hold: per agent step, probability of keeping the previous action (0 = i.i.d. uniform; 0.9 = long presses).
    sb3_path: a stable-baselines3 PPO .zip acting on the env's own observations, or None.
    sb3_share: share of episodes the SB3 policy plays (the rest are random); sb3_epsilon: its random-action rate.
    """

    hold: float = 0.5
    sb3_path: str | None = None
    sb3_share: float = 0.5
    sb3_epsilon: float = 0.05


@dataclass
class PixelsSourceConfig:
    """What every pixel data source shares: frame size, held-out share, batching."""

    frame_size: int = 64  # frames are resized (area average) to frame_size x frame_size RGB
    batch_size: int = 32
    num_workers: int = 0
    val_batches: int = 8  # fixed held-out batches per validation (and per test)
    unroll: int = 1  # as Breakout's data.unroll: n > 1 adds the n - 1 true steps after each row

    def validate(self, key: str) -> None:
        require(self.frame_size >= 8 and self.frame_size % 8 == 0, f"{key}.frame_size",
                f"must be a multiple of 8, at least 8 (got {self.frame_size})")
        require(self.batch_size > 0, f"{key}.batch_size", f"must be > 0 (got {self.batch_size})")
        require(self.num_workers >= 0, f"{key}.num_workers", "must be >= 0")
        require(self.val_batches > 0, f"{key}.val_batches", "must be > 0")
        require(self.unroll >= 1, f"{key}.unroll", f"must be >= 1 (got {self.unroll})")


@dataclass
class GymPixelsDataConfig(PixelsSourceConfig):
    """Episodes played in a gymnasium env (`env_id`, made with `env_kwargs`), its frames from the observation when
    that is an RGB image, else from `render()` (rgb_array). Each agent step repeats its action `frame_skip` times
    (the frame is the last one's); with `sticky` probability each env step repeats the previous action instead."""

    name: str = "gym_pixels"
    env_id: str = "CartPole-v1"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    frame_skip: int = 1
    sticky: float = 0.0
    max_steps: int = 500  # agent steps per episode at most (an episode also ends when the env ends it)
    train_episodes: int = 64  # played once on the training seeds, kept in memory and on disk (paths.cache_dir)
    val_episodes: int = 8  # on held-out seeds: validation, test and the export's start frames
    policy: PixelsPolicyConfig = field(default_factory=PixelsPolicyConfig)

    def validate(self, key: str) -> None:
        super().validate(key)
        require(bool(self.env_id), f"{key}.env_id", "must name a gymnasium env id")
        require(self.frame_skip >= 1, f"{key}.frame_skip", f"must be >= 1 (got {self.frame_skip})")
        require(0.0 <= self.sticky < 1.0, f"{key}.sticky", f"must be in [0, 1) (got {self.sticky})")
        require(self.max_steps >= 8, f"{key}.max_steps", f"must be >= 8 (got {self.max_steps})")
        require(self.train_episodes >= 1, f"{key}.train_episodes", "must be >= 1")
        require(self.val_episodes >= 1, f"{key}.val_episodes", "must be >= 1")
        p = self.policy
        for name in ("hold", "sb3_share", "sb3_epsilon"):
            require(0.0 <= getattr(p, name) <= 1.0, f"{key}.policy.{name}", f"must be in [0, 1] "
                    f"(got {getattr(p, name)})")
        require(p.hold < 1.0, f"{key}.policy.hold", "must be < 1 (1 would never change the first action)")


@dataclass
class MinariDataConfig(PixelsSourceConfig):
    """Episodes of a local Minari dataset (`minari list local`; `python -m worldmodels.record` makes one): image
    observations (H, W, 3) uint8, or a dict observation with the image under `image_key`; Discrete actions. The
    last `val_episodes` episodes are held out."""

    name: str = "minari"
    dataset_id: str = "???"
    image_key: str | None = None
    val_episodes: int = 2

    def validate(self, key: str) -> None:
        super().validate(key)
        require(self.dataset_id not in ("", "???"), f"{key}.dataset_id",
                "must name a local Minari dataset (data=minari data.dataset_id=<id>; minari list local)")
        require(self.val_episodes >= 1, f"{key}.val_episodes", "must be >= 1")


METRICS = BREAKOUT_METRICS

SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"tiny_denoiser": DenoiserConfig, "fast_denoiser": FastDenoiserConfig},
    "data": {"gym_pixels": GymPixelsDataConfig, "minari": MinariDataConfig},
    "module": {"diffusion": DiffusionConfig},
}

PLAYERS_DEFAULT = "random,holder,data"


def check(run) -> None:
    """The palette head knows only our Breakout's 9 colours; any other game needs the RGB head. Rows, start strips
    and the evaluation hold 4 context frames."""
    if getattr(run.model, "output", "rgb") == "palette":
        raise ConfigError("model.output: palette is Breakout's 9 colours; task=gym_pixels needs model.output=rgb")
    if run.model.context_frames != 4:
        raise ConfigError(f"model.context_frames: task=gym_pixels takes 4 context frames (got "
                          f"{run.model.context_frames}); only task=breakout takes other counts")
    size = run.data.frame_size
    levels = len(getattr(run.model, "widths", [0]))
    if size % (1 << (levels - 1)):
        raise ConfigError(f"data.frame_size: {size} px does not halve {levels - 1} times for model.widths; "
                          f"pick a multiple of {1 << (levels - 1)}")


def add_eval_arguments(group: argparse._ArgumentGroup) -> None:
    """gym_pixels models take the Breakout group's flags (--games, --horizon, --one-step, --steps, --sigma-max,
    --players), with their own players (default random,holder,data)."""
    group.description = (f"use the flags above: --games (held-out episodes per player), --horizon, --one-step, "
                         f"--steps, --sigma-max, --players (default {PLAYERS_DEFAULT}; random, holder, data, sb3)")

"""The gym_tokens task's config schemas: which entries of a recorded game's observation become which tokens.

The model is Flappy's token Transformer (`worldmodels.flappy.config.TransformerConfig`, `model=token_transformer`)
and the objective its soft-bin cross-entropy (`TokenObjectiveConfig`), over a token spec built from the declaration
here instead of Flappy's hand-written one (`worldmodels.gym_tokens.spec`). Light on purpose (no torch, no minari):
`worldmodels.tasks.register_schemas` registers `SCHEMAS` before every composition.

A declaration, in YAML or on the command line (CartPole's observation: cart position, cart velocity, pole angle,
pole angular velocity):

    data:
      dataset_id: cartpole/state-v0
      fields:
        - {index: 0, name: cart_x, bins: 64, low: -2.4, high: 2.4}
        - {index: 2, name: pole_angle, bins: 64, low: -0.21, high: 0.21}

Each field reads one entry of the flattened observation (`index`), is binned uniformly into `bins` bins over
[`low`, `high`] (values outside are clipped to the end bins) and owns its own id range. A range left out is read off
the training episodes (their min and max, widened by `margin` of the span on each side). With no `fields` every
entry becomes a field with `bins` bins and ranges from the data.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from worldmodels.core.schema import ConfigError, require
from worldmodels.flappy.config import TokenObjectiveConfig, TransformerConfig

MAX_BINS = 1024  # per field; the vocabulary is the sum of every field's bins, plus done and the actions


@dataclass
class TokenFieldConfig:
    """One observation entry as one token per frame."""

    index: int = 0  # position in the flattened observation
    name: str = ""  # the field's name in metrics and the manifest; "" = obs<index>
    bins: int | None = None  # None = the data section's `bins`
    low: float | None = None  # None = read off the training episodes
    high: float | None = None

    def validate(self, key: str) -> None:
        require(self.index >= 0, f"{key}.index", f"must be >= 0 (got {self.index})")
        require(self.bins is None or 2 <= self.bins <= MAX_BINS, f"{key}.bins",
                f"must be in [2, {MAX_BINS}] (got {self.bins})")
        require(self.low is None or self.high is None or self.low < self.high, f"{key}.low",
                f"must be below high (got low {self.low}, high {self.high})")
        require(self.name == "" or self.name.isidentifier(), f"{key}.name",
                f"must be a plain identifier such as cart_x (got {self.name!r})")


@dataclass
class MinariTokensDataConfig:
    """Episodes of a local Minari dataset with vector observations (a Box, or a dict with the vector under
    `observation_key`) and Discrete actions, as token windows. The last `val_episodes` episodes are held out."""

    name: str = "minari_tokens"
    dataset_id: str = "???"
    observation_key: str | None = None
    fields: list[TokenFieldConfig] = field(default_factory=list)  # [] = every entry of the observation
    bins: int = 64  # bins of a field that does not say
    margin: float = 0.05  # share of the span added on each side of a range read off the data
    window_frames: int = 32  # whole frames per training example
    batch_size: int = 32
    num_workers: int = 0
    val_batches: int = 4  # fixed held-out batches per validation (and per test)
    val_episodes: int = 2

    def validate(self, key: str) -> None:
        require(self.dataset_id not in ("", "???"), f"{key}.dataset_id",
                "must name a local Minari dataset (data.dataset_id=<id>; python -m worldmodels.record --observations "
                "state makes one)")
        require(2 <= self.bins <= MAX_BINS, f"{key}.bins", f"must be in [2, {MAX_BINS}] (got {self.bins})")
        require(0.0 <= self.margin <= 1.0, f"{key}.margin", f"must be in [0, 1] (got {self.margin})")
        for name in ("window_frames", "batch_size", "val_batches", "val_episodes"):
            require(getattr(self, name) >= 1, f"{key}.{name}", f"must be >= 1 (got {getattr(self, name)})")
        require(self.num_workers >= 0, f"{key}.num_workers", "must be >= 0")
        names = [f.name or f"obs{f.index}" for f in self.fields]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        require(duplicate is None, f"{key}.fields", f"two fields are named {duplicate!r}")
        require(not {"done", "action"} & set(names), f"{key}.fields", "done and action are the spec's own fields; "
                                                                     "name the observation fields otherwise")


@dataclass
class GymTokensObjectiveConfig(TokenObjectiveConfig):
    """Flappy's token objective; `soft_bin_fields` names observation fields, [] smooths all of them (every field
    here is a binned number, so a prediction one bin off should cost less than one far off)."""

    name: str = "gym_tokens"
    soft_bin_fields: list[str] = field(default_factory=list)

    def known_soft_bin_fields(self) -> None:
        """None: the names come from the data declaration; `worldmodels.gym_tokens.task.build_module` checks them."""
        return None


# What TokenLoss.metrics logs whatever the fields are; it also logs acc_<field> and acc1_<field> per declared field,
# which are not known before the dataset is read.
_METRICS = ("ce", "acc_done", "done_recall")
METRICS: dict[str, dict[str, tuple[str, ...]]] = {"gym_tokens": {"train": _METRICS, "held_out": _METRICS}}

SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"token_transformer": TransformerConfig},
    "data": {"minari_tokens": MinariTokensDataConfig},
    "module": {"gym_tokens": GymTokensObjectiveConfig},
}


def check(run) -> None:
    """Windows of an ordered (non-sliding) attention model must fit its context (frames of F fields are F + 2
    tokens: the fields, done, the action); the field count is checked when the dataset is read."""
    if run.model.sliding_window:
        return
    fields = len(run.data.fields)
    if fields and run.data.window_frames * (fields + 2) > run.model.context:
        raise ConfigError(f"data.window_frames: {run.data.window_frames} frames of {fields + 2} tokens do not fit "
                          f"model.context={run.model.context}; lower it or raise the context")


def add_eval_arguments(group: argparse._ArgumentGroup) -> None:
    """gym_tokens models take the Breakout group's --games (episodes scored, all when fewer) and --horizon (frames
    dreamed per rollout), and --recording: another dataset of the same game (other players) to score on."""
    group.description = ("use --games (episodes scored) and --horizon (frames dreamed per rollout) above, and")
    group.add_argument("--recording", default=None, metavar="DATASET_ID",
                       help="score on every episode of this local Minari dataset (the same game and observation, "
                            "e.g. recorded with another --player) instead of the training dataset's held-out ones")

"""The Flappy task's config schemas: the single source of every default its YAML (`conf/model/token_transformer.yaml`,
`conf/data/flappy.yaml`, `conf/module/tokens.yaml`) extends.

Light on purpose (the stdlib and `worldmodels.core` schemas only: no torch, gymnasium or stable-baselines3):
`worldmodels.tasks.register_schemas` puts `SCHEMAS` into Hydra's ConfigStore before every composition, so a command's
start-up never pays for the code that uses them (`collector.py`, `data.py`, `objective.py`, `transformer.py` import
them from here).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from worldmodels.core.config import OptimConfig
from worldmodels.core.schema import require

# The token spec's ordinal fields (`worldmodels.flappy.tokens`; written out here, the spec imports the game).
ORDINAL_FIELDS = ("bird_y", "pipe_x", "gap_y")

# The collector's policies (`worldmodels.flappy.collector`).
POLICY_NAMES = ("ppo", "noisy_ppo", "random", "do_nothing", "give_up")  # index = the id stored per episode


@dataclass
class CollectorConfig:
    """How the Flappy player is trained and which episodes are recorded with it."""

    ppo_timesteps: int = 1_000_000  # PPO environment steps
    ppo_envs: int = 8  # parallel environments PPO collects rollouts from
    ppo_seed: int = 0
    eval_episodes: int = 100  # deterministic games that score the trained policy
    episodes: int = 50_000  # episodes to record
    max_frames: int = 2000  # frames per recorded episode at most, so a perfect player cannot run forever
    workers: int = 2  # recording processes (0: record in this process)
    val_fraction: float = 0.05  # share of episodes held out for validation and test
    mix: dict[str, float] = field(default_factory=lambda: {
        "ppo": 0.4, "noisy_ppo": 0.2, "random": 0.15, "do_nothing": 0.05, "give_up": 0.2})  # policy weights
    # noisy_ppo: chance per frame of a uniformly random action. Flappy forgives little: with the 1M-step player,
    # 0.05 dies at about the first pipe (~100 frames) and 0.2 within ~50 frames, as early as random flapping.
    noisy_epsilon: float = 0.05
    random_flap_prob: float = 0.1  # random: chance per frame of a flap
    give_up_after: list[int] = field(default_factory=lambda: [30, 300])  # give_up: plays [low, high] frames
    policy: str = "ppo"  # "ppo", or "heuristic": the scripted HeuristicPolicy stands in for PPO (no training)

    def validate(self, key: str) -> None:
        for name in ("ppo_timesteps", "ppo_envs", "eval_episodes", "max_frames"):
            require(getattr(self, name) > 0, f"{key}.{name}", f"must be > 0 (got {getattr(self, name)})")
        require(self.episodes >= 2, f"{key}.episodes", f"must be >= 2 (got {self.episodes})")
        require(self.workers >= 0, f"{key}.workers", "must be >= 0")
        require(0.0 < self.val_fraction < 1.0, f"{key}.val_fraction", f"must be in (0, 1) (got {self.val_fraction})")
        for name, weight in self.mix.items():
            require(name in POLICY_NAMES, f"{key}.mix.{name}", f"unknown policy (known: {', '.join(POLICY_NAMES)})")
            require(weight >= 0, f"{key}.mix.{name}", f"must be >= 0 (got {weight})")
        require(sum(self.mix.values()) > 0, f"{key}.mix", "the weights must sum to more than 0")
        for name in ("noisy_epsilon", "random_flap_prob"):
            require(0.0 <= getattr(self, name) <= 1.0, f"{key}.{name}", "must be in [0, 1]")
        require(len(self.give_up_after) == 2 and 0 <= self.give_up_after[0] <= self.give_up_after[1],
                f"{key}.give_up_after", f"must be [low, high] with 0 <= low <= high (got {self.give_up_after})")
        require(self.policy in ("ppo", "heuristic"), f"{key}.policy", f"must be ppo or heuristic (got {self.policy!r})")


@dataclass
class FlappyDataConfig:
    """Where Flappy episodes come from (the collector) and how they are cut into windows and batched."""

    name: str = "flappy"
    batch_size: int = 64
    window_frames: int = 38  # whole frames per example: 38 x 10 = 380 tokens, inside a 384-token context
    num_workers: int = 0  # DataLoader processes cutting windows (cheap: 0 is usually enough)
    val_batches: int = 16  # fixed held-out batches per validation (and per test)
    collector: CollectorConfig = field(default_factory=CollectorConfig)

    def validate(self, key: str) -> None:
        require(self.batch_size > 0, f"{key}.batch_size", f"must be > 0 (got {self.batch_size})")
        require(self.window_frames > 0, f"{key}.window_frames", f"must be > 0 (got {self.window_frames})")
        require(self.num_workers >= 0, f"{key}.num_workers", "must be >= 0")
        require(self.val_batches > 0, f"{key}.val_batches", "must be > 0")
        self.collector.validate(f"{key}.collector")

    @property
    def window_tokens(self) -> int:
        from worldmodels.flappy.tokens import SPEC  # imports the game (gymnasium): kept out of the light schemas

        return self.window_frames * SPEC.tokens_per_frame


@dataclass
class DecodingConfig:
    """The frame decoder used for rollouts and exported as the player's defaults (see worldmodels.flappy.decoding)."""

    slide_frames: int = 4  # whole frames dropped from the KV cache window each time it fills up
    temperature: float = 1.0  # softmax temperature for the sampled gap of a new pipe (other fields are greedy)


@dataclass
class TokenObjectiveConfig:
    name: str = "tokens"
    soft_bin_width: float = 1.0  # std in bins of the target kernel on `soft_bin_fields`; 0 = one-hot cross-entropy
    # The ordinal fields whose targets are smoothed. Not gap_y by default: a new pipe's gap takes only the game's 8
    # heights (14 bins apart), and a smoothed target teaches the model to draw heights between them, which the next
    # frames then pull back to a real one (a gap that moves after its pipe appeared).
    soft_bin_fields: list[str] = field(default_factory=lambda: ["bird_y", "pipe_x"])
    done_weight: float = 5.0  # loss weight of the done slot
    respawn_weight: float = 5.0  # loss weight of the respawn slot
    action_weight: float = 0.0  # loss weight of the action slot (actions come from the player at play time)
    optim: OptimConfig = field(default_factory=OptimConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def known_soft_bin_fields(self) -> tuple[str, ...] | None:
        """The ordinal fields `soft_bin_fields` may name; None when the spec is built later and checks them."""
        return ORDINAL_FIELDS

    def validate(self, key: str) -> None:
        require(self.soft_bin_width >= 0, f"{key}.soft_bin_width", f"must be >= 0 (got {self.soft_bin_width})")
        known = self.known_soft_bin_fields()
        for name in self.soft_bin_fields if known is not None else ():
            require(name in known, f"{key}.soft_bin_fields",
                    f"{name!r} is not an ordinal field (ordinal: {', '.join(known)})")
        for name in ("done_weight", "respawn_weight", "action_weight"):
            value = getattr(self, name)
            require(value >= 0, f"{key}.{name}", f"must be >= 0 (got {value})")
        require(self.decoding.slide_frames >= 1, f"{key}.decoding.slide_frames",
                f"must be >= 1 (got {self.decoding.slide_frames})")
        require(self.decoding.temperature > 0, f"{key}.decoding.temperature",
                f"must be > 0 (got {self.decoding.temperature})")


@dataclass
class TransformerConfig:
    """TokenTransformer shape. The defaults with vocab_size=500 give ~433k parameters (embeddings tied)."""

    name: str = "token_transformer"
    vocab_size: int = 0  # 0 = filled in from the token spec by the caller; checked when the module is built
    layers: int = 3  # pre-norm Transformer blocks
    heads: int = 4  # attention heads; width / heads must be even for RoPE
    width: int = 112  # residual stream size
    mlp_ratio: float = 3.0  # MLP hidden size = mlp_ratio * width
    context: int = 384  # tokens attended (the KV cache size); a whole number of frames is the caller's business
    sliding_window: bool = False  # True: attend to the `context` tokens ending at each token, cache = ring (docstring)
    rope_base: float = 10000.0  # RoPE frequency base
    dropout: float = 0.0  # on attention weights and both residual branches, training only

    def validate(self, key: str) -> None:
        for field_name in ("layers", "heads", "width", "context"):
            value = getattr(self, field_name)
            require(value > 0, f"{key}.{field_name}", f"must be > 0 (got {value})")
        require(self.vocab_size >= 0, f"{key}.vocab_size", f"must be >= 0, 0 = from the token spec "
                                                           f"(got {self.vocab_size})")
        require(self.width % self.heads == 0, f"{key}.width",
                f"must be a multiple of heads={self.heads} (got {self.width})")
        require(self.width // self.heads % 2 == 0, f"{key}.heads",
                f"width / heads must be even for RoPE (got {self.width} / {self.heads})")
        require(self.mlp_ratio > 0, f"{key}.mlp_ratio", f"must be > 0 (got {self.mlp_ratio})")
        require(self.rope_base > 1, f"{key}.rope_base", f"must be > 1 (got {self.rope_base})")
        require(0 <= self.dropout < 1, f"{key}.dropout", f"must be in [0, 1) (got {self.dropout})")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


# module.name -> what its `compute_loss` returns beside the loss (`worldmodels.flappy.objective.TokenLoss.metrics`:
# `ce`, per state field `acc_<field>`, per ordinal field `acc1_<field>`, `done_recall`), the same on training steps
# ("train") and held-out ones ("held_out": val/ and test/). Written out, not derived from the token spec, which
# imports the game; `worldmodels.tasks.validate` checks optimized_metric against them (with `loss` and train's `lr`,
# which the shared core logs), tests/core/test_bad_input.py checks them against a real compute_loss.
_TOKEN_METRICS = ("ce", "acc_bird_y", "acc1_bird_y", "acc_marker", "acc_pipe_x", "acc1_pipe_x", "acc_gap_y",
                  "acc1_gap_y", "acc_respawn", "acc_done", "done_recall")
METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "tokens": {"train": _TOKEN_METRICS, "held_out": _TOKEN_METRICS},
}

# group -> the `name` its YAML picks -> schema: what `worldmodels.tasks.validate` builds, and the ConfigStore's
# `schema/<group>/<name>`
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"token_transformer": TransformerConfig},
    "data": {"flappy": FlappyDataConfig},
    "module": {"tokens": TokenObjectiveConfig},
}


def check(run) -> None:
    """Windows of an ordered (non-sliding) attention model must fit its context (`worldmodels.tasks.validate`)."""
    if run.model.sliding_window:
        return
    from worldmodels.flappy.tokens import SPEC  # the token spec reads the game's constants; kept off Hydra's start-up

    tokens = run.data.window_frames * SPEC.tokens_per_frame
    require(tokens <= run.model.context, "data.window_frames",
            f"{run.data.window_frames} frames ({tokens} tokens) do not fit model.context={run.model.context}; "
            "shorten the windows or set model.sliding_window=true (banded attention trains on longer ones)")


def add_eval_arguments(group: argparse._ArgumentGroup) -> None:
    """`python -m worldmodels.evaluate`'s flags for this task's models (here, light, so --help loads no model code)."""
    group.add_argument("--episodes-per-policy", type=int, default=6, help="held-out episodes per policy")
    group.add_argument("--start-frames", type=int, default=20, help="real frames a free rollout or dream starts from")
    group.add_argument("--loop-games", type=int, default=40, help="closed-loop games per player skill, real and dream")
    group.add_argument("--max-frames", type=int, default=2000, help="closed-loop games end here at the latest")
    group.add_argument("--episodes-like", type=Path, default=None,
                       help="evaluate on the held-out episodes of this export's data (default: the model's)")

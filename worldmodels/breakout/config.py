"""The Breakout task's config schemas: the single source of every default its YAML (`conf/model/tiny_denoiser.yaml`,
`conf/model/fast_denoiser.yaml`, `conf/data/breakout.yaml`, `conf/module/diffusion.yaml`) extends.

Light on purpose (the stdlib and `worldmodels.core` schemas only, no torch): `worldmodels.tasks.register_schemas`
puts `SCHEMAS` into Hydra's ConfigStore before every composition, so a command's start-up never pays for the code
that uses them (`denoiser.py`, `sim.py`, `data.py`, `objective.py` import them from here).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from worldmodels.core.config import OptimConfig
from worldmodels.core.schema import require

FRAME_SIZE = 64  # frames are FRAME_SIZE x FRAME_SIZE RGB (the simulator's, `worldmodels.breakout.sim`)

@dataclass
class NetInputConfig:
    """What both denoisers take besides their shape: the context length and the weights they start from."""

    # Context frames the net sees, oldest first: its input has 4 + 3 * context_frames + num_actions channels. 4 fix
    # neither the ball's sub-pixel x nor its x velocity (`experiments/breakout_levers/ceiling.py`); 8 do, nearly.
    context_frames: int = 4
    # An ONNX export of the same net whose weights start this one (fine-tuning). With more context frames than the
    # export's, its context weights go to the newest frames and the older frames' weights start at zero, so the net
    # starts as the export. Relative paths are from the directory the command runs in.
    init_from: str | None = None

    def validate_input(self, key: str) -> None:
        # init_from's file is checked when the net is built (`task.build_net`, before training starts), not here:
        # exports and checkpoints keep the path on record, and they are read where that file is not.
        require(self.context_frames >= 1, f"{key}.context_frames", f"must be >= 1 (got {self.context_frames})")


@dataclass
class DenoiserConfig(NetInputConfig):
    """TinyDenoiser shape. The defaults are the seed model (~2.34M parameters)."""

    name: str = "tiny_denoiser"
    width: int = 96  # channels in every residual block
    blocks: int = 14  # residual blocks of two dilated 3x3 convolutions
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # cycled over the blocks

    def validate(self, key: str) -> None:
        require(self.width > 0, f"{key}.width", f"must be > 0 (got {self.width})")
        self.validate_input(key)
        require(self.blocks > 0, f"{key}.blocks", f"must be > 0 (got {self.blocks})")
        require(len(self.dilations) > 0 and all(d > 0 for d in self.dilations), f"{key}.dilations",
                f"must be a non-empty list of positive ints (got {self.dilations})")


@dataclass
class FastDenoiserConfig(NetInputConfig):
    """FastDenoiser shape: channels per resolution (64, 32, 16 px for a 64x64 frame) and the blocks at each."""

    name: str = "fast_denoiser"
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])  # full, 1/2, 1/4 resolution
    blocks: list[int] = field(default_factory=lambda: [1, 1, 3])  # residual blocks per resolution
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4])  # cycled over the lowest resolution's blocks
    # "rgb": the head adds an RGB change to the newest frame. "palette": the head scores the game's 9 colours per
    # pixel (trained with cross-entropy), starting from the newest frame's own colour, and each pixel takes the best
    # scoring colour: a pixel is one colour or another, never a blend, so an uncertain ball cannot fade to a smear.
    output: str = "rgb"
    # Palette head only. True: a frame holds at most one ball, a 2x2 square, as in the game. Each pixel takes its best
    # colour other than the ball's, and the ball is drawn once, on the 2x2 square with the most ball probability per
    # pixel in the frame, when the frame's ball probability adds up to more than half of that square's pixels in the
    # frame (denoiser.one_ball_classes). False: each pixel takes its best colour,
    # so a ball the net is unsure where to put can vanish. Decoding only: training is the same either way.
    one_ball: bool = False
    # Palette head with one_ball only. True: the frame is drawn in the game's own layout, the way the simulator
    # renders one: each brick of the 6 x 8 grid whole (in its row's colour, where the mean probability of that colour
    # over the brick's pixels is above a half) or gone, one paddle of the game's width on its two rows (where the
    # paddle colour is likeliest), the one ball over them, background everywhere else (denoiser.layout_classes).
    # Decoding only, like one_ball: training is the same either way but for the frames an unrolled loss feeds back
    # (data.unroll > 1).
    layout: bool = False

    def validate(self, key: str) -> None:
        require(self.output in ("rgb", "palette"), f"{key}.output", f"must be rgb or palette (got {self.output!r})")
        self.validate_input(key)
        require(not self.one_ball or self.output == "palette", f"{key}.one_ball",
                f"decodes the palette head's scores; set {key}.output=palette with it (got output={self.output!r})")
        require(not self.layout or self.one_ball, f"{key}.layout",
                f"draws the one ball over the layout; set {key}.one_ball=true (and output=palette) with it")
        require(len(self.widths) >= 1 and all(w > 0 for w in self.widths), f"{key}.widths",
                f"must be a non-empty list of positive ints (got {self.widths})")
        require(len(self.blocks) == len(self.widths) and all(b >= 0 for b in self.blocks), f"{key}.blocks",
                f"must give a count >= 0 for each of the {len(self.widths)} widths (got {self.blocks})")
        require(len(self.dilations) > 0 and all(d > 0 for d in self.dilations), f"{key}.dilations",
                f"must be a non-empty list of positive ints (got {self.dilations})")
        lowest = FRAME_SIZE >> (len(self.widths) - 1)
        require(lowest >= 1, f"{key}.widths", f"{len(self.widths)} resolutions halve a {FRAME_SIZE} px frame below "
                f"1 px; give at most {FRAME_SIZE.bit_length()} widths (one per resolution, {FRAME_SIZE} px down to 1)")


@dataclass
class PolicyConfig:
    """Knobs of `TrackerPolicy` (`worldmodels.breakout.sim`); the "messy" ones make data cover failure states.

    random_action_rate: per step, probability of a uniformly random action.
    miss_rate: per serve (each new life), probability that the policy runs away from
        the ball for that whole life, so it is missed.
    bad_move_rate: per step, probability of moving away from the ball.
    reset_rate: per step, probability that `maybe_reset` restarts a game mid-play.
    """

    random_action_rate: float = 0.1
    miss_rate: float = 0.0
    bad_move_rate: float = 0.0
    reset_rate: float = 0.0


@dataclass
class BreakoutDataConfig:
    """Where Breakout rows come from and how they are batched."""

    name: str = "breakout"
    batch_size: int = 32
    games_per_worker: int = 128  # simulators stepped together in each worker; a multiple of batch_size
    num_workers: int = 1  # DataLoader processes making rows while the model trains
    warmup_steps: int = 64  # steps each stream plays before its first row, so games start mid-play
    val_batches: int = 8  # fixed held-out batches per validation (and per test)
    # Steps of the true game per row: 1 gives (context, action, next frame); n > 1 adds the n - 1 steps after it
    # (`next_actions`, `next_targets`): the objective then feeds the model's own sampled frames back over them.
    unroll: int = 1
    # Share of ordinary rows kept (1: every row). Rows whose target or newest context frame was made by a step with
    # an event (a brick broken, a ball lost and served again, a wall or paddle bounce) are always kept. The held-out
    # streams are filtered the same way, so validation losses of runs with different event_keep do not compare.
    event_keep: float = 1.0
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def validate(self, key: str) -> None:
        require(self.batch_size > 0, f"{key}.batch_size", f"must be > 0 (got {self.batch_size})")
        require(self.games_per_worker > 0 and self.games_per_worker % self.batch_size == 0,
                f"{key}.games_per_worker", f"must be a positive multiple of batch_size={self.batch_size} "
                f"(got {self.games_per_worker})")
        require(self.num_workers >= 0, f"{key}.num_workers", "must be >= 0")
        require(self.warmup_steps >= 0, f"{key}.warmup_steps", "must be >= 0")
        require(self.val_batches > 0, f"{key}.val_batches", "must be > 0")
        require(self.unroll >= 1, f"{key}.unroll", f"must be >= 1 (got {self.unroll})")
        require(0.0 < self.event_keep <= 1.0, f"{key}.event_keep", f"must be in (0, 1] (got {self.event_keep})")
        for name in ("random_action_rate", "miss_rate", "bad_move_rate", "reset_rate"):
            rate = getattr(self.policy, name)
            require(0.0 <= rate <= 1.0, f"{key}.policy.{name}", f"must be in [0, 1] (got {rate})")


@dataclass
class SamplerConfig:
    """The warm-start sampler used at validation, for samples and as the exported default."""

    steps: int = 2  # denoiser calls per frame
    sigma_max: float = 1.0  # warm-start noise: latest frame + sigma_max * noise
    sigma_min: float = 0.02  # last noise level of the geometric schedule


@dataclass
class DiffusionConfig:
    name: str = "diffusion"
    sigma_min: float = 0.02  # training noise range, sampled log-uniformly
    sigma_max: float = 1.0
    # Extra loss weight on pixels that differ from the latest context frame (0 = plain MSE, the seed's objective).
    # The ball and the paddle's edges are ~0.3% of a frame; weighting them makes small budgets learn the dynamics.
    change_weight: float = 0.0
    # Share of rows whose noisy input is the sampler's warm start (latest context frame + sampler.sigma_max noise)
    # instead of the noised next frame (0 = the seed's objective). A noised next frame still shows where a 10 px
    # paddle went even at sigma 1, so a model trained only on those never needs the action; the warm start
    # shows where the paddle was, which is what the first sampler step really sees.
    warm_start_fraction: float = 0.0
    # Noise augmentation of the context frames: each row's 4 context frames get Gaussian noise of a std drawn
    # uniformly from [0, context_noise] (in [-1, 1] units; 0 = none), so the model learns to read imperfect frames
    # like its own. Training only: the player and evaluate feed the frames as they are.
    context_noise: float = 0.0
    optim: OptimConfig = field(default_factory=OptimConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # the warm-start sampler, exported to the player

    def validate(self, key: str) -> None:
        for prefix, low, high in ((key, self.sigma_min, self.sigma_max),
                                  (f"{key}.sampler", self.sampler.sigma_min, self.sampler.sigma_max)):
            for name, value in (("sigma_min", low), ("sigma_max", high)):
                require(math.isfinite(value), f"{prefix}.{name}", f"must be a finite number (got {value})")
            require(low > 0, f"{prefix}.sigma_min", f"must be > 0 (got {low})")
            require(low < high, f"{prefix}.sigma_min", f"must be < sigma_max (got {low} >= {high})")
        require(self.sampler.steps >= 1, f"{key}.sampler.steps", f"must be >= 1 (got {self.sampler.steps})")
        require(self.change_weight >= 0, f"{key}.change_weight", f"must be >= 0 (got {self.change_weight})")
        require(self.context_noise >= 0, f"{key}.context_noise", f"must be >= 0 (got {self.context_noise})")
        require(0 <= self.warm_start_fraction <= 1, f"{key}.warm_start_fraction",
                f"must be in [0, 1] (got {self.warm_start_fraction})")


# module.name -> what its `compute_loss` returns beside the loss (`worldmodels.breakout.objective`), on training steps
# ("train") and on held-out ones ("held_out": val/ and test/). `worldmodels.tasks.validate` checks optimized_metric
# against them (with `loss` and train's `lr`, which the shared core logs); tests/core/test_bad_input.py checks them
# against a real compute_loss, so they cannot drift.
METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "diffusion": {"train": (), "held_out": ("psnr", "psnr_copy_last")},
}

# group -> the `name` its YAML picks -> schema: what `worldmodels.tasks.validate` builds, and the ConfigStore's
# `schema/<group>/<name>`
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"tiny_denoiser": DenoiserConfig, "fast_denoiser": FastDenoiserConfig},
    "data": {"breakout": BreakoutDataConfig},
    "module": {"diffusion": DiffusionConfig},
}


PLAYERS_DEFAULT = "tracker,holder,sloppy,random"


def add_eval_arguments(group: argparse._ArgumentGroup) -> None:
    """`python -m worldmodels.evaluate`'s flags for this task's models (here, light, so --help loads no model code)."""
    group.add_argument("--games", type=int, default=32, help="held-out games per player")
    group.add_argument("--horizon", type=int, default=64, help="autonomous rollout length (frames)")
    group.add_argument("--one-step", type=int, default=128, help="one-step predictions per game")
    group.add_argument("--players", default=None,
                       help=f"comma-separated players (worldmodels.breakout.players; default {PLAYERS_DEFAULT})")
    group.add_argument("--steps", type=int, default=None, help="denoising steps K (default: the model's)")
    group.add_argument("--sigma-max", type=float, default=None, help="warm-start noise (default: the model's)")

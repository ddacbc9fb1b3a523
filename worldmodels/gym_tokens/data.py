"""Recorded episodes as tokens: a local Minari dataset's vector observations, binned by the data config's declaration.

A frame is one token per declared field (in declaration order), then `done`, then the action (the token spec is built
here, `recorded_spec`; its id ranges follow the fields' order). An episode of T steps has T + 1 observations and so
T + 1 frames: frame t holds observation t and action t (the one taken after seeing it); the last frame's action is
0 (none was taken) and its done token is the dataset's `terminations` flag (a truncated episode just stops, done no).

Windows are Flappy's (`worldmodels.flappy.data.window_starts`, `cut_windows`): whole frames of one episode, with
absolute positions, so `position % tokens_per_frame` is the slot.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium
import numpy as np

from worldmodels.core.data import TRAIN, StreamDataModule
from worldmodels.core.errors import UserError
from worldmodels.flappy.data import FlappyWindows
from worldmodels.flappy.tokens import ACTION, MARKER, ORDINAL, Field, Slot, TokenSpec
from worldmodels.gym_tokens.config import MinariTokensDataConfig, TokenFieldConfig
from worldmodels.pixels.data import minari_facts, open_minari

log = logging.getLogger(__name__)

START_CONTEXTS, START_CONTEXT_FRAMES = 8, 8  # held-out openings the export carries (and checks its graphs on)


@dataclass(frozen=True)
class RecordedEpisode:
    observations: np.ndarray  # float64 (T + 1, D), flattened
    actions: np.ndarray  # int64 (T,)
    terminated: bool


@dataclass(frozen=True)
class ResolvedField:
    """A declared field with its name, bins and range filled in."""

    name: str
    index: int
    bins: int
    low: float
    high: float


class TokenEpisodes:
    """Episodes' tokens concatenated (`tokens`, `offsets`, `frames`): what Flappy's window cutter reads."""

    def __init__(self, episodes: list[np.ndarray], tokens_per_frame: int, directory: str):
        self.frames = np.array([e.size // tokens_per_frame for e in episodes], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum([e.size for e in episodes])[:-1]]).astype(np.int64)
        self.tokens = np.concatenate(episodes) if episodes else np.zeros(0, np.int64)
        self.directory = directory


@dataclass
class Recorded:
    """A dataset read and tokenized: the spec, the fields it was built from, the action names, the episodes."""

    spec: TokenSpec
    fields: list[ResolvedField]
    action_names: list[str]
    train: list[RecordedEpisode]
    held_out: list[RecordedEpisode]

    def tokens(self, episode: RecordedEpisode) -> np.ndarray:
        return encode_recorded(self.spec, self.fields, episode)


def flat_observations(obs, cfg: MinariTokensDataConfig) -> np.ndarray:
    if isinstance(obs, dict):
        if cfg.observation_key is None or cfg.observation_key not in obs:
            raise UserError(f"data.observation_key: {cfg.dataset_id}'s observations are a dict with keys "
                            f"{', '.join(obs)}; name the vector's with data.observation_key=<key>")
        obs = obs[cfg.observation_key]
    obs = np.asarray(obs)
    if obs.ndim < 2 or not np.issubdtype(obs.dtype, np.number):
        raise UserError(f"data.dataset_id: {cfg.dataset_id}'s observations are {obs.dtype} {obs.shape[1:]}, not "
                        "vectors of numbers; record the env's own observations (python -m worldmodels.record "
                        "--observations state)")
    obs = obs.reshape(len(obs), -1).astype(np.float64)
    if obs.shape[1] > 64:
        raise UserError(f"data.dataset_id: {cfg.dataset_id}'s observations have {obs.shape[1]} entries; the token "
                        "model takes up to 64 per frame (image observations: task=gym_pixels data=minari)")
    return obs


def resolve_fields(cfg: MinariTokensDataConfig, train: list[RecordedEpisode]) -> list[ResolvedField]:
    """The declaration with names, bins and missing ranges filled in (ranges from the training episodes)."""
    values = np.concatenate([e.observations for e in train])
    width = values.shape[1]
    declared = cfg.fields or [TokenFieldConfig(index=i) for i in range(width)]
    resolved = []
    for i, f in enumerate(declared):
        if f.index >= width:
            raise UserError(f"data.fields[{i}].index: {f.index} is past the observation's {width} entries")
        column = values[:, f.index]
        if not np.isfinite(column).all():
            raise UserError(f"data.fields[{i}]: observation entry {f.index} holds NaN or infinite values")
        lo, hi = float(column.min()), float(column.max())
        span = hi - lo if hi > lo else 1.0
        low = f.low if f.low is not None else lo - cfg.margin * span
        high = f.high if f.high is not None else hi + cfg.margin * span
        if not low < high:
            raise UserError(f"data.fields[{i}]: low {low:g} is not below high {high:g} (give both, or neither)")
        resolved.append(ResolvedField(f.name or f"obs{f.index}", f.index, f.bins or cfg.bins, low, high))
    return resolved


def recorded_spec(fields: list[ResolvedField], action_names: list[str]) -> TokenSpec:
    """The token spec of a declaration: one ordinal field per observation field, done, the action."""
    return TokenSpec(
        fields=(*(Field(f.name, ORDINAL, f"observation entry {f.index}", bins=f.bins, pixel_range=(f.low, f.high))
                  for f in fields),
                Field("done", MARKER, "the episode ended here (terminated): its last frame", labels=("no", "yes")),
                Field("action", ACTION, "the player's input after seeing this frame; it leads to the next frame",
                      labels=tuple(action_names))),
        frame=(*(Slot(f.name, f.name) for f in fields), Slot("done", "done"), Slot("action", "action")),
        geometry={},
    )


def encode_recorded(spec: TokenSpec, fields: list[ResolvedField], episode: RecordedEpisode) -> np.ndarray:
    frames = len(episode.observations)
    values = {f.name: episode.observations[:, f.index] for f in fields}
    values["done"] = np.zeros(frames, np.int64)
    values["done"][-1] = int(episode.terminated)
    values["action"] = np.concatenate([episode.actions, [0]]).astype(np.int64)
    return spec.encode_values(values)


_CACHE: dict[tuple, Recorded] = {}


def read_recorded(cfg: MinariTokensDataConfig) -> Recorded:
    """The dataset, its spec and its episodes (read once per process and declaration)."""
    key = (cfg.dataset_id, cfg.observation_key, repr(cfg.fields), cfg.bins, cfg.margin, cfg.val_episodes)
    if key not in _CACHE:
        _CACHE[key] = _read(cfg)
    return _CACHE[key]


def read_episodes(cfg: MinariTokensDataConfig, dataset_id: str) -> tuple[list[RecordedEpisode], list[str]]:
    """Every episode of a local Minari dataset (observations flattened as `cfg` says) and its action names."""
    dataset = open_minari(dataset_id)
    if not isinstance(dataset.action_space, gymnasium.spaces.Discrete):
        raise UserError(f"data.dataset_id: {dataset_id} has {dataset.action_space} actions; the token model needs "
                        "Discrete actions")
    _, names = minari_facts(dataset)
    if len(set(names)) != len(names):
        names = [f"action {i}" for i in range(len(names))]
    episodes = []
    for episode in dataset.iterate_episodes():
        actions = np.asarray(episode.actions, np.int64).reshape(-1)
        terminated = bool(np.asarray(episode.terminations).reshape(-1)[-1]) if len(actions) else False
        episodes.append(RecordedEpisode(flat_observations(episode.observations, cfg), actions, terminated))
    return episodes, names


def _read(cfg: MinariTokensDataConfig) -> Recorded:
    episodes, names = read_episodes(cfg, cfg.dataset_id)
    if len(episodes) <= cfg.val_episodes:
        raise UserError(f"data.val_episodes: {cfg.dataset_id} has {len(episodes)} episodes; holding out "
                        f"{cfg.val_episodes} leaves none to train on")
    train, held_out = episodes[:-cfg.val_episodes], episodes[-cfg.val_episodes:]
    fields = resolve_fields(cfg, train)
    spec = recorded_spec(fields, names)
    return Recorded(spec, fields, names, train, held_out)


class GymTokensDataModule(StreamDataModule):
    """Training windows from the training episodes; validation and test (streams VAL, TEST) from the held-out ones.
    The dataset is read in every process that trains (`cache_dir` is not used: nothing is cached)."""

    def __init__(self, cfg: MinariTokensDataConfig, seed: int = 0, cache_dir: str | Path | None = None):
        super().__init__(cfg, seed)
        self.recorded: Recorded | None = None
        self.stores: dict[bool, TokenEpisodes] = {}

    def setup(self, stage: str) -> None:
        if self.recorded is None:
            self.recorded = read_recorded(self.cfg)
            r = self.recorded
            for held_out, episodes in ((False, r.train), (True, r.held_out)):
                self.stores[held_out] = TokenEpisodes([r.tokens(e) for e in episodes], r.spec.tokens_per_frame,
                                                      self.cfg.dataset_id)
            log.info("%s: %d training and %d held-out episodes, %d frames; %d tokens per frame, vocabulary %d",
                     self.cfg.dataset_id, len(r.train), len(r.held_out), int(self.stores[False].frames.sum()),
                     r.spec.tokens_per_frame, r.spec.vocab_size)

    def export_extras(self) -> dict:
        """Openings of held-out episodes (START_CONTEXT_FRAMES frames, the last without its action) for the export's
        parity check and a player's start, and the resolved fields."""
        self.setup("fit")
        r = self.recorded
        k = r.spec.tokens_per_frame
        contexts = [r.tokens(e)[:START_CONTEXT_FRAMES * k - 1].tolist() for e in r.held_out[:START_CONTEXTS]
                    if len(e.observations) > START_CONTEXT_FRAMES]
        return {"start_contexts": contexts, "fields": [asdict(f) for f in r.fields]}

    def _stream(self, stream: int, generation: int, max_batches: int | None) -> FlappyWindows:
        self.setup("fit")
        store = self.stores[stream != TRAIN]
        return FlappyWindows(store, np.arange(len(store.frames)), self.cfg, self.seed, stream, self.rank, generation,
                             max_batches=max_batches, k=self.recorded.spec.tokens_per_frame)

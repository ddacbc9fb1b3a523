"""Play the real game and the dream with the same scripted player, and compare what a player would notice.

Closed loop: a `ScriptedPlayer` (`players.py`) plays the real `flappy-bird-gymnasium` reading the token state (what
the dream shows, at the same resolution), and the same player, with the same random stream, plays the dream from that
game's first `start_frames` real frames, reading the dreamed state and choosing its flaps from it. Both games are
scored by one rule (`physics.RuleChecker`: the env's own score rule on the token frames; on real games it equals the
env's score) and cut at `max_frames`.

Forced gaps (`evaluate.free_rollout(..., forced=True)`): a held-out real episode's actions replayed in the dream, the
dream's k-th new pipe given the episode's k-th new gap (`real_gaps`; only the random draw is given), so drift and
death timing measure the dynamics rather than a different course.

Every dreamed transition is checked against the game's rules (`physics.py`), and so is every real one (those must
be 0).

Library module: `play_real`, `play_dream`, `closed_loop`, `real_gaps`, `loop_summary`, `rule_summary`;
`python -m pytest tests/flappy/test_closed_loop.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from worldmodels.flappy.decoding.rules import gap_positions, pipe_is_new
from worldmodels.flappy.game import NOOP, FlappyGame
from worldmodels.flappy.physics import LEGAL_GAP_BINS, RULES, Transition, check_game
from worldmodels.flappy.players import SKILLS, ScriptedPlayer, Skill
from worldmodels.flappy.tokens import SPEC

PER_FRAME, STATE = SPEC.tokens_per_frame, SPEC.state_tokens_per_frame


@dataclass
class Game:
    """One game: state tokens (T, 9), actions (T,) (`actions[t]` follows frame t; the last is NOOP), and what the
    rules made of it."""

    frames: np.ndarray
    actions: np.ndarray
    transitions: list[Transition]
    env_score: int | None = None  # the real env's own score (real games only)

    @property
    def score(self) -> int:
        return sum(t.passed for t in self.transitions)

    @property
    def died(self) -> bool:
        return bool(self.transitions) and self.transitions[-1].done

    @property
    def length(self) -> int:
        return len(self.frames)


def _analysed(frames, actions, env_score=None) -> Game:
    frames, actions = np.asarray(frames, np.int64).reshape(-1, STATE), np.asarray(actions, np.int64)
    return Game(frames, actions, check_game(frames, actions), env_score)


def _seen(frame) -> object:
    return SPEC.decode_frame(np.asarray(frame, np.int64)[:STATE])[0]


def _player(skill: Skill, seed: int) -> ScriptedPlayer:
    """The player of game `seed`, on a random stream apart from the game's own; real and dream get the same one."""
    player = ScriptedPlayer(skill)
    player.reset(np.random.default_rng([seed, 2]))
    return player


def play_real(game: FlappyGame, skill: Skill, seed: int, max_frames: int) -> Game:
    """The player on the real game (reset with `seed`), reading the token state."""
    player = _player(skill, seed)
    state = game.reset(seed)
    frames, actions = [SPEC.encode_frame(state, NOOP)[:STATE]], []
    while not game.done and len(frames) < max_frames:
        actions.append(player(_seen(frames[-1])))
        frames.append(SPEC.encode_frame(game.step(actions[-1]), NOOP)[:STATE])
    return _analysed(frames, [*actions, NOOP], game.score)


def play_dream(decoder, skill: Skill, real: Game, seed: int, start_frames: int, max_frames: int) -> Game:
    """The same player on the dream from `real`'s first `start_frames` frames (the player is replayed over them, so
    it reaches the dream in the state the real game left it in)."""
    start = min(start_frames, real.length - 1)
    player = _player(skill, seed)
    for t in range(start - 1):
        if player(_seen(real.frames[t])) != real.actions[t]:
            raise RuntimeError("play_dream: the replayed player chose differently from the real game")
    context = np.concatenate([real.frames[:start], (real.actions[:start] + SPEC.offsets["action"])[:, None]], 1)
    decoder.reset(context.reshape(-1)[:-1], seed=seed)
    frames, actions = list(real.frames[:start]), list(real.actions[:start - 1])
    while not decoder.done and len(frames) < max_frames:
        actions.append(player(_seen(frames[-1])))
        frames.append(decoder.step(int(actions[-1])))
    return _analysed(frames, [*actions, NOOP])


EVAL_SEED = 2**31  # game seeds from here on: the collector draws its episodes' seeds below 2**31


def closed_loop(decoder, skills: dict[str, Skill] | None = None, games: int = 40, seed: int = EVAL_SEED,
                start_frames: int = 20, max_frames: int = 2000) -> dict[str, list[tuple[Game, Game]]]:
    """skill -> [(real game, dream game)] on game seeds `seed + i` (never a training game's: the collector's seeds
    are below 2**31) and dream seeds `seed + i` too."""
    game, out = FlappyGame(), {}
    for name, skill in (skills or SKILLS).items():
        pairs = []
        for i in tqdm(range(games), desc=f"closed loop ({name})", leave=False):
            real = play_real(game, skill, seed + i, max_frames)
            pairs.append((real, play_dream(decoder, skill, real, seed + i, start_frames, max_frames)))
        out[name] = pairs
    game.close()
    return out


def real_gaps(frames) -> list[int]:
    """The gap ids of a real episode's new pipes, in the order they appeared."""
    frames = np.asarray(frames, np.int64).reshape(-1, STATE)
    gaps = []
    for previous, frame in zip(frames, frames[1:], strict=False):
        gaps += [int(frame[slot]) for slot, pipe in gap_positions(SPEC).items()
                 if pipe_is_new(pipe, frame.tolist(), previous.tolist())]
    return gaps


# ---- summaries -----------------------------------------------------------------------------------------------------


def _rate(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def rule_summary(games: list[Game]) -> dict:
    """Per rule, the share of transitions that broke it; deaths without a possible collision and certain
    collisions without a death per game; the respawn token's presence on recycling frames; new gaps."""
    transitions = [t for g in games for t in g.transitions]
    out = {f"{rule}_rate": _rate(sum(t.broken[rule] for t in transitions), len(transitions)) for rule in RULES}
    respawns = [t for t in transitions if t.respawn]
    new_gaps = [gap for t in transitions for gap in t.new_gaps]
    out.update({
        "transitions": len(transitions),
        "respawns": len(respawns),
        "respawn_token_present": _rate(sum(t.respawn_token for t in respawns), len(respawns)),
        "new_gaps": len(new_gaps),
        "new_gap_legal": _rate(sum(g in LEGAL_GAP_BINS for g in new_gaps), len(new_gaps)),
        "settled_gap_moved_per_game": _rate(sum(t.broken["settled_gap"] for t in transitions), len(games)),
        "deaths_without_collision_per_game": _rate(sum(t.done and not t.can_collide for t in transitions), len(games)),
        "collisions_without_death_per_game": _rate(sum(t.must_collide and not t.done for t in transitions),
                                                   len(games)),
    })
    return out


def loop_summary(pairs: list[tuple[Game, Game]], max_frames: int) -> dict:
    real, dream = [p[0] for p in pairs], [p[1] for p in pairs]
    r_scores, d_scores = np.array([g.score for g in real]), np.array([g.score for g in dream])
    return {
        "games": len(pairs),
        "real_score_mean": float(r_scores.mean()), "dream_score_mean": float(d_scores.mean()),
        "score_ratio": float(d_scores.mean() / r_scores.mean()) if r_scores.mean() > 0 else float("nan"),
        "real_score_quartiles": np.percentile(r_scores, [25, 50, 75]).tolist(),
        "dream_score_quartiles": np.percentile(d_scores, [25, 50, 75]).tolist(),
        "real_length_median": float(np.median([g.length for g in real])),
        "dream_length_median": float(np.median([g.length for g in dream])),
        "length_ratio": float(np.mean([g.length for g in dream]) / np.mean([g.length for g in real])),
        "real_cut_at_max": float(np.mean([g.length >= max_frames for g in real])),
        "dream_cut_at_max": float(np.mean([g.length >= max_frames for g in dream])),
        "env_score_matches": float(np.mean([g.score == g.env_score for g in real])),
    }

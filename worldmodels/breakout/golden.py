"""Golden traces of the Breakout simulator, the byte-exact reference for ports (e.g. TypeScript).

Write the traces:   python -m worldmodels.breakout.golden [--out tests/golden/breakout_traces.json]
Check a file:       python -m worldmodels.breakout.golden --verify [--out PATH]

JSON format (version 1):
  format, version, frame_shape [64, 64, 3], frame_hash "fnv1a32" (FNV-1a 32-bit over the
  raw row-major HWC uint8 bytes, as 8 lowercase hex digits),
  prng_check: {seed, state (uint32 after seeding), values (first mulberry32 outputs)},
  traces: [{name, seed, policy_seed, policy, actions [T],
            frame_hashes [T + 1] (index 0 = the frame right after construction, index t =
            after step t), score [T], lives [T] (after each step), game_over_steps
            (1-based step indices whose step ended a game),
            frames: [{index, rgb_base64 (raw HWC bytes)}]}].
A port replays `actions` on BreakoutSim([seed]) and must match every hash and frame.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldmodels.breakout.config import PolicyConfig
from worldmodels.breakout.sim import BreakoutSim, TrackerPolicy, mulberry32, seed_to_state

FORMAT = "worldmodels.breakout.golden"
VERSION = 1
DEFAULT_PATH = Path("tests/golden/breakout_traces.json")
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = np.uint32(0x01000193)
PRNG_CHECK_SEED = 12345
PRNG_CHECK_DRAWS = 8


@dataclass(frozen=True)
class TraceSpec:
    name: str
    seed: int
    policy_seed: int
    policy: PolicyConfig
    steps: int = 300


TRACE_SPECS = (
    TraceSpec("tracker", seed=0, policy_seed=100, policy=PolicyConfig(random_action_rate=0.1)),
    TraceSpec("noisy", seed=1, policy_seed=101, policy=PolicyConfig(random_action_rate=0.3, bad_move_rate=0.1)),
    TraceSpec("misses", seed=2024, policy_seed=102, policy=PolicyConfig(random_action_rate=0.1, miss_rate=0.5)),
    # Misses every ball: several game overs and full resets within 300 steps.
    TraceSpec("game_over", seed=7, policy_seed=103, policy=PolicyConfig(random_action_rate=0.0, miss_rate=1.0)),
)


def fnv1a32(frames: np.ndarray) -> list[str]:
    """FNV-1a 32-bit hash of each frame's raw bytes, as hex strings."""
    data = np.ascontiguousarray(np.asarray(frames, np.uint8).reshape(len(frames), -1).T)
    h = np.full(len(frames), FNV_OFFSET, np.uint32)
    # Sequential over bytes, vectorized over frames.
    for column in data:
        h ^= column
        h *= FNV_PRIME
    return [f"{int(v):08x}" for v in h]


def _record(seed: int, steps: int, choose: Callable[[BreakoutSim, int], int]):
    """Run one game for `steps` steps, taking `choose(sim, t)` as the action at step t."""
    sim = BreakoutSim([seed])
    frames, actions, score, lives, game_overs = [sim.render()[0]], [], [], [], []
    for t in range(steps):
        action = choose(sim, t)
        result = sim.step(np.array([action]))
        frames.append(sim.render()[0])
        actions.append(action)
        score.append(int(sim.score[0]))
        lives.append(int(sim.lives[0]))
        if result.game_over[0]:
            game_overs.append(t + 1)
    return actions, np.stack(frames), score, lives, game_overs


def _policy_action(policy: TrackerPolicy, sim: BreakoutSim, t: int) -> int:
    return int(policy.act(sim)[0])


def _trace(name: str, seed: int, policy_seed: int, policy: dict, recorded) -> dict:
    actions, frames, score, lives, game_overs = recorded
    keep = (0, len(actions) // 2, len(actions))
    return {
        "name": name,
        "seed": seed,
        "policy_seed": policy_seed,
        "policy": policy,
        "actions": actions,
        "frame_hashes": fnv1a32(frames),
        "score": score,
        "lives": lives,
        "game_over_steps": game_overs,
        "frames": [{"index": i, "rgb_base64": base64.b64encode(frames[i].tobytes()).decode()} for i in keep],
    }


def _prng_check() -> dict:
    initial = state = seed_to_state([PRNG_CHECK_SEED])
    values = []
    for _ in range(PRNG_CHECK_DRAWS):
        state, u = mulberry32(state)
        values.append(float(u[0]))
    return {"seed": PRNG_CHECK_SEED, "state": int(initial[0]), "values": values}


def generate() -> dict:
    """Build the golden data from TRACE_SPECS (policy-driven)."""
    traces = []
    for spec in TRACE_SPECS:
        policy = TrackerPolicy(spec.policy, np.random.default_rng(spec.policy_seed))
        recorded = _record(spec.seed, spec.steps, functools.partial(_policy_action, policy))
        traces.append(_trace(spec.name, spec.seed, spec.policy_seed, dataclasses.asdict(spec.policy), recorded))
    return {
        "format": FORMAT,
        "version": VERSION,
        "frame_shape": [64, 64, 3],
        "frame_hash": "fnv1a32",
        "prng_check": _prng_check(),
        "traces": traces,
    }


def replay(trace: dict) -> dict:
    """Re-run a stored trace from its recorded actions only (what a port does)."""
    actions = trace["actions"]
    recorded = _record(trace["seed"], len(actions), lambda sim, t: actions[t])
    return _trace(trace["name"], trace["seed"], trace["policy_seed"], trace["policy"], recorded)


def verify(path: Path | str = DEFAULT_PATH) -> list[str]:
    """Compare a golden file with a fresh generation and a replay; returns the mismatches."""
    stored = json.loads(Path(path).read_text())
    fresh = generate()
    problems = [f"{key} differs" for key in fresh if key != "traces" and stored.get(key) != fresh[key]]
    if len(stored.get("traces", [])) != len(fresh["traces"]):
        return problems + ["number of traces differs"]
    for old, new in zip(stored["traces"], fresh["traces"], strict=True):
        for source, other in (("regenerated", new), ("replayed", replay(old))):
            problems += [f"{old['name']}: {source} {k} differs" for k in new if old.get(k) != other[k]]
    return problems


def write(path: Path | str = DEFAULT_PATH) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(generate(), separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_PATH), help="golden JSON path")
    parser.add_argument("--verify", action="store_true", help="check the file instead of writing it")
    args = parser.parse_args()
    if args.verify:
        problems = verify(args.out)
        print("\n".join(problems) or "golden traces match")
        raise SystemExit(1 if problems else 0)
    write(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

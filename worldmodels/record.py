"""Record episodes of any gymnasium env into a local Minari dataset, as a world model's data (pixels or tokens).

    python -m worldmodels.record CartPole-v1 --dataset-id cartpole/random-v0 --episodes 50
    python -m worldmodels.record ALE/Breakout-v5 --dataset-id breakout/holder-v0 --player holder --frame-skip 4 \\
        --sticky 0.25 --env-kwargs '{"frameskip": 1, "repeat_action_probability": 0.0}'
    python -m worldmodels.train task=gym_pixels data=minari data.dataset_id=cartpole/random-v0
    python -m worldmodels.record CartPole-v1 --dataset-id cartpole/state-v0 --observations state --episodes 200
    python -m worldmodels.train task=gym_tokens data.dataset_id=cartpole/state-v0

Observations are the env's frames (its RGB observation, or `render()`), resized to --frame-size and stored
losslessly (no JPEG), for the pixel model; with --observations state they are the env's own observations (a Box
vector), for the token model. Actions are the player's. The dataset's description ends with the action names
(`actions: NOOP, FIRE, ...`), which training writes into the manifest for the player's keys. Datasets live under
`MINARI_DATASETS_PATH` (default ~/.minari/datasets); `minari list local` lists them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings

import gymnasium
import numpy as np
from tqdm import tqdm

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.pixels.config import PixelsPolicyConfig

RECORD_PLAYERS = ("random", "holder", "sb3")
DATASET_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")  # Minari's form: [namespace/]name-v<version>


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.record", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("env_id", help="a gymnasium env id with Discrete actions and RGB frames, rendered also with "
                                       "--observations state (ALE/... needs worldmodels[atari])")
    parser.add_argument("--dataset-id", required=True, help="the Minari dataset to write, [namespace/]name-v<N>")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to record (default 20)")
    parser.add_argument("--player", choices=RECORD_PLAYERS, default="holder",
                        help="random (a new key every step), holder (keeps a key with probability --hold), sb3 "
                             "(a stable-baselines3 PPO .zip on the env's own observations; --sb3-path)")
    parser.add_argument("--hold", type=float, default=0.75, help="the holder's chance to keep its key (default 0.75)")
    parser.add_argument("--sb3-path", default=None, help="the sb3 player's PPO .zip")
    parser.add_argument("--observations", choices=("frames", "state"), default="frames",
                        help="frames (RGB, for task=gym_pixels) or state (the env's own vector observation, for "
                             "task=gym_tokens; default frames)")
    parser.add_argument("--frame-size", type=int, default=64, help="frames are stored at this size (default 64)")
    parser.add_argument("--frame-skip", type=int, default=1, help="env steps per recorded step (default 1)")
    parser.add_argument("--sticky", type=float, default=0.0, help="chance an env step repeats the previous action")
    parser.add_argument("--max-steps", type=int, default=500, help="recorded steps per episode at most")
    parser.add_argument("--env-kwargs", default="{}", help="JSON keyword arguments for gymnasium.make")
    parser.add_argument("--seed", type=int, default=0, help="the episodes' seeds and the player's draws")
    parser.add_argument("--force", action="store_true", help="replace a local dataset of the same id")
    args = parser.parse_args(argv)
    checks = [
        (DATASET_ID.match(args.dataset_id) is not None,
         f"--dataset-id: {args.dataset_id!r} is not a Minari id ([namespace/]name-v<N>, e.g. cartpole/random-v0)"),
        (args.episodes >= 1, f"--episodes: must be >= 1 (got {args.episodes})"),
        (0.0 <= args.hold < 1.0, f"--hold: must be in [0, 1) (got {args.hold})"),
        (args.frame_size >= 8 and args.frame_size % 8 == 0, f"--frame-size: must be a multiple of 8 (got "
                                                              f"{args.frame_size})"),
        (args.frame_skip >= 1, f"--frame-skip: must be >= 1 (got {args.frame_skip})"),
        (0.0 <= args.sticky < 1.0, f"--sticky: must be in [0, 1) (got {args.sticky})"),
        (args.max_steps >= 1, f"--max-steps: must be >= 1 (got {args.max_steps})"),
        (args.player != "sb3" or bool(args.sb3_path), "--player sb3 needs --sb3-path (a stable-baselines3 PPO .zip)"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    try:
        args.env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        raise UserError(f"--env-kwargs: not JSON ({err})") from None
    if not isinstance(args.env_kwargs, dict):
        raise UserError("--env-kwargs: must be a JSON object, e.g. '{\"frameskip\": 1}'")
    return args


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import minari  # an optional extra (worldmodels[minari]), and slow to import: checked after the flags
    except ImportError:
        raise UserError("recording needs minari: pip install 'worldmodels[minari]'") from None
    from worldmodels.pixels.envs import PixelEnv, action_names, episode_seeds, make_env, make_player  # torch: slow

    if args.dataset_id in minari.list_local_datasets() and not args.force:
        raise UserError(f"--dataset-id: {args.dataset_id} exists locally; pass --force to replace it")
    env = make_env(args.env_id, args.env_kwargs)
    names = action_names(env)
    rng = np.random.default_rng([args.seed, 2])
    pixels = PixelEnv(env, args.frame_size, args.frame_skip, args.sticky, rng)
    state = args.observations == "state"
    if state and not (isinstance(env.observation_space, gymnasium.spaces.Box) and
                      np.issubdtype(env.observation_space.dtype, np.number)):
        raise UserError(f"--observations state: {args.env_id}'s observations are {env.observation_space}, not a Box "
                        "of numbers; record its frames instead (--observations frames)")

    def observed(frame) -> np.ndarray:
        return np.asarray(pixels.env_obs, np.float32).reshape(-1) if state else frame
    policy = PixelsPolicyConfig(hold=args.hold, sb3_path=args.sb3_path, sb3_share=1.0)
    player_name = {"random": "random", "holder": "data", "sb3": "sb3"}[args.player]
    from minari.data_collector import EpisodeBuffer  # with minari above

    buffers = []
    try:
        for i, seed in enumerate(tqdm(episode_seeds(args.seed, 3, args.episodes), desc=f"recording {args.env_id}",
                                      unit="episode")):
            player = make_player(player_name, policy, len(names), rng)
            frame, _ = pixels.reset(seed=int(seed))
            frames, actions, rewards, ends, cuts = [observed(frame)], [], [], [], []
            for t in range(args.max_steps):
                action = player.act(pixels.env_obs)
                frame, reward, terminated, truncated, _ = pixels.step(action)
                frames.append(observed(frame))
                actions.append(action)
                rewards.append(reward)
                ends.append(bool(terminated))
                cuts.append(bool(truncated) or (t == args.max_steps - 1 and not terminated))
                if terminated or truncated:
                    break
            buffers.append(EpisodeBuffer(id=i, seed=int(seed), observations=np.stack(frames),
                                         actions=np.asarray(actions, np.int64), rewards=rewards, terminations=ends,
                                         truncations=cuts))
    finally:
        env.close()
    if args.force and args.dataset_id in minari.list_local_datasets():
        minari.delete_dataset(args.dataset_id)
    if state:
        size = int(np.prod(env.observation_space.shape))
        space = gymnasium.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        what, train = f"{args.env_id} observations ({size} numbers)", "task=gym_tokens"
    else:
        space = pixels.observation_space
        what = f"{args.env_id} frames at {args.frame_size}x{args.frame_size} RGB"
        train = "task=gym_pixels data=minari"
    with warnings.catch_warnings():  # "env_spec is None": the frames are not the env's observations, so no env
        warnings.simplefilter("ignore", UserWarning)  # spec is stored; the description names the env id
        dataset = minari.create_dataset_from_buffers(
            dataset_id=args.dataset_id, buffer=buffers, observation_space=space,
            action_space=env.action_space, algorithm_name=f"worldmodels.record --player {args.player}",
            description=(f"{what}, frame skip {args.frame_skip}, sticky {args.sticky}, player {args.player}."
                         "\nactions: " + ", ".join(names)),
            data_format="hdf5", jpeg_encoding=False)
    print(f"{args.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps, actions "
          f"{', '.join(names)} (python -m worldmodels.train {train} data.dataset_id={args.dataset_id})")


if __name__ == "__main__":
    main()

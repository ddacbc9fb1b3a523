#!/usr/bin/env bash
# The study's recordings (CartPole-v1 states, into MINARI_DATASETS_PATH): the training data of both rows, and two
# recordings by players the first row never saw (a PPO player that balances to 500, and uniform random keys).
set -euo pipefail
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1  # PPO's tiny MLP: more threads only contend on 2 cores
"$PY" experiments/cartpole_tokens/train_player.py --steps 25000 --out experiments/cartpole_tokens/ppo_cartpole.zip
record() { "$PY" -m worldmodels.record CartPole-v1 --observations state --force "$@"; }
record --dataset-id cartpole/state-v0 --episodes 1000 --player holder --hold 0.5
record --dataset-id cartpole/ppo-train-state-v0 --episodes 30 --player sb3 \
    --sb3-path experiments/cartpole_tokens/ppo_cartpole.zip --seed 21
record --dataset-id cartpole/ppo-state-v0 --episodes 40 --player sb3 \
    --sb3-path experiments/cartpole_tokens/ppo_cartpole.zip --seed 11
record --dataset-id cartpole/random-state-v0 --episodes 100 --player random --seed 12
# The mixed row's data: the PPO episodes first, so the last 100 (held out) are the holder's, as in the first row.
"$PY" - <<'PYTHON'
import minari

if "cartpole/mix-state-v0" in minari.list_local_datasets():
    minari.delete_dataset("cartpole/mix-state-v0")
parts = [minari.load_dataset(i) for i in ("cartpole/ppo-train-state-v0", "cartpole/state-v0")]
mixed = minari.combine_datasets(parts, "cartpole/mix-state-v0")
print(f"cartpole/mix-state-v0: {mixed.total_episodes} episodes, {mixed.total_steps} steps")
PYTHON

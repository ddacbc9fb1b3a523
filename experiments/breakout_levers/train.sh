#!/usr/bin/env bash
# The study's rows: one lever each, the same budget of 64,000 trained rows (denoiser forward + backward passes):
# 4,000 steps of 16 one-step rows, or 1,000 steps of 16 rows unrolled over 4 steps. One torch thread per run, so
# two runs share this 2-core machine. Runs land in outputs/breakout_levers/<row>/; report.py evaluates them.
#   bash experiments/breakout_levers/train.sh [row ...]      # default: every row, one after another
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MESSY="data.policy.miss_rate=0.25 data.policy.bad_move_rate=0.05 data.policy.reset_rate=0.002"
GAME4=outputs/breakout_levers/game4.onnx
mkdir -p outputs/breakout_levers
GAME8=outputs/breakout_levers/game8.onnx  # game8_ft's export, models/breakout as of f98115b
[ -f $GAME4 ] || git show bf77902:models/breakout/breakout.onnx > $GAME4
[ -f $GAME8 ] || git show f98115b:models/breakout/breakout.onnx > $GAME8
declare -A ROWS=(
  [fast]="experiment=breakout_fast trainer.max_steps=4000"
  [messy]="experiment=breakout_fast trainer.max_steps=4000 $MESSY"
  [messy_noise]="experiment=breakout_fast trainer.max_steps=4000 $MESSY module.context_noise=0.1"
  [messy_palette]="experiment=breakout_fast trainer.max_steps=4000 $MESSY model.output=palette"
  # messy_palette resumed for 500 more steps on unrolled rows (4 steps each): a curriculum, 96,000 trained rows.
  [messy_palette_unroll]="experiment=breakout_fast trainer.max_steps=4500 $MESSY model.output=palette data.unroll=4 ckpt_path=outputs/breakout_levers/messy_palette/checkpoints/last.ckpt"
  [messy_unroll]="experiment=breakout_fast trainer.max_steps=1000 $MESSY data.unroll=4"
  # Every row trained at the one-step sampler's input (the newest frame + sigma_max noise), 10,000 steps: report.py
  # reads their checkpoints at 4,000 steps (this budget) and every 2,000 (the learning curves).
  [messy_warm]="experiment=breakout_fast trainer.max_steps=10000 $MESSY module.warm_start_fraction=1.0"
  [messy_palette_warm]="experiment=breakout_fast trainer.max_steps=10000 $MESSY model.output=palette module.warm_start_fraction=1.0"
  # messy_palette_warm on event-rich rows: every row next to a bounce, brick break or serve, 10% of the others.
  [messy_palette_warm_events]="experiment=breakout_fast trainer.max_steps=10000 $MESSY model.output=palette module.warm_start_fraction=1.0 data.event_keep=0.1"
  # Fine-tuned from the 4-frame breakout_game model (models/breakout as of bf77902, the step-10,000 point of
  # messy_palette_warm_events) for 6,000 more steps: with 8 context frames (the older 4 start at zero), and with
  # its own 4 frames as the control, so the context is the only difference.
  [game8_ft]="experiment=breakout_game8 trainer.max_steps=6000 model.init_from=$GAME4"
  [game4_ft]="experiment=breakout_game trainer.max_steps=6000 model.init_from=$GAME4"
  # game4_ft's export fine-tuned for 6,000 more steps: the longer-training lever (22,000 steps in all).
  [game4_ft2]="experiment=breakout_game trainer.max_steps=6000 model.init_from=outputs/breakout_levers/game4_ft/export/breakout.onnx"
  # game8_ft's export (models/breakout as of f98115b) fine-tuned for 6,000 more steps: longer training with 8 frames
  # (22,000 steps in all), beside game4_ft2; game8_ft3 trains game8_ft2's export 6,000 more again (28,000 in all).
  [game8_ft2]="experiment=breakout_game8 trainer.max_steps=6000 model.init_from=$GAME8"
  [game8_ft3]="experiment=breakout_game8 trainer.max_steps=6000 model.init_from=outputs/breakout_levers/game8_ft2/export/breakout.onnx"
  # The 8-frame recipe from scratch, the shipped recipe's 10,000 steps: the context lever alone.
  [game8]="experiment=breakout_game8"
)
for row in "${@:-fast messy messy_noise messy_palette messy_palette_unroll messy_unroll messy_warm messy_palette_warm messy_palette_warm_events}"; do
  for name in $row; do
    echo "== $name: ${ROWS[$name]}"
    OMP_NUM_THREADS=1 $PY -m worldmodels.train ${ROWS[$name]} trainer.val_check_interval=500 \
      callbacks.checkpoint.every_n_train_steps=500 logger=csv trainer.enable_progress_bar=false \
      hydra.run.dir=outputs/breakout_levers/$name
  done
done

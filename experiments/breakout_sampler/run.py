"""Study: Breakout denoising steps K x warm-start noise sigma_max, against one-step and rollout fidelity and latency.

    .venv/bin/python experiments/breakout_sampler/run.py [--model models/breakout_tiny/breakout.onnx] [--games 32]
    .venv/bin/python experiments/breakout_sampler/run.py --latency-only   # re-time the frames, keep the fidelity

For every (K, sigma_max) it runs `worldmodels.evaluate.evaluate` (the same code as `python -m worldmodels.evaluate
MODEL --steps K --sigma-max S`) on the same held-out games and noise seed, and times one dream frame (K denoiser
calls, batch 1, onnxruntime with 1 thread). Writes results.json, results.md and results.png next to this file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from worldmodels.bench import denoiser_input, ort_session, time_ms
from worldmodels.breakout.evaluate import evaluate, load_model

HERE = Path(__file__).resolve().parent
STEPS, SIGMAS, HORIZONS = (1, 2, 4, 8), (0.5, 1.0), ("1", "8", "32")


def frame_ms(path: Path, steps: int, calls: int = 20) -> float:
    """ms per dream frame = K denoiser calls at batch 1 (1 onnxruntime thread, the browser-like setting)."""
    session, x = ort_session(path, threads=1), denoiser_input(json.loads(path.with_suffix(".json").read_text()))
    return time_ms(lambda: session.run(None, {"input": x}), calls) * steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/breakout_tiny/breakout.onnx"))
    parser.add_argument("--games", type=int, default=32)
    parser.add_argument("--latency-only", action="store_true",
                        help="only re-time ms/frame (on an idle machine) into the existing results.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    if args.latency_only:
        saved = json.loads((HERE / "results.json").read_text())
        ms = {k: frame_ms(args.model, k) for k in STEPS}
        for row in saved["rows"]:
            row["ms_per_frame"] = ms[row["steps"]]
        write(saved["rows"], saved["copy_last_frame"], args)
        return
    rows = []
    for steps in STEPS:
        ms = frame_ms(args.model, steps)
        for sigma in SIGMAS:
            model = load_model(args.model)
            model.steps, model.sigma_max = steps, sigma
            result = evaluate(model, games=args.games, horizon=32, seed=0)
            one, roll = result["one_step"]["model"], result["rollout"]["model"]
            rows.append({"steps": steps, "sigma_max": sigma, "ms_per_frame": ms,
                         "one_step_psnr": one["psnr"], "one_step_ball_px": one["ball_err_px"],
                         **{f"rollout{h}_ball_px": roll[h]["ball_err_px"] for h in HORIZONS},
                         **{f"rollout{h}_psnr": roll[h]["psnr"] for h in HORIZONS}})
            print(f"K={steps} sigma_max={sigma}: {ms:.1f} ms/frame, one-step ball {one['ball_err_px']:.2f} px, "
                  f"rollout@32 ball {roll['32']['ball_err_px']:.2f} px", flush=True)
    write(rows, result["one_step"]["copy last frame"], args)


def write(rows: list[dict], copy: dict, args: argparse.Namespace) -> None:
    (HERE / "results.json").write_text(json.dumps({"model": str(args.model), "games": args.games, "rows": rows,
                                                    "copy_last_frame": copy}, indent=2) + "\n")
    head = ("| K | sigma_max | ms/frame | one-step PSNR | one-step ball px | rollout ball px @1 / @8 / @32 "
            "| rollout PSNR @32 |\n|---|---|---|---|---|---|---|")
    lines = [f"| {r['steps']} | {r['sigma_max']} | {r['ms_per_frame']:.1f} | {r['one_step_psnr']:.2f} | "
             f"{r['one_step_ball_px']:.2f} | {r['rollout1_ball_px']:.2f} / {r['rollout8_ball_px']:.2f} / "
             f"{r['rollout32_ball_px']:.2f} | {r['rollout32_psnr']:.2f} |" for r in rows]
    lines.append(f"| copy last frame | - | 0 | {copy['psnr']:.2f} | {copy['ball_err_px']:.2f} | - | - |")
    (HERE / "results.md").write_text(head + "\n" + "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for sigma in SIGMAS:
        sel = [r for r in rows if r["sigma_max"] == sigma]
        ks = [r["steps"] for r in sel]
        axes[0].plot(ks, [r["one_step_ball_px"] for r in sel], "o-", label=f"sigma_max {sigma}")
        axes[1].plot(ks, [r["rollout32_ball_px"] for r in sel], "o-", label=f"sigma_max {sigma}")
    axes[2].plot(STEPS, [next(r["ms_per_frame"] for r in rows if r["steps"] == k) for k in STEPS], "o-")
    for ax, title in zip(axes, ("one-step ball error (px)", "32-frame rollout ball error (px)",
                                "ms per dream frame (ORT, 1 thread)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(STEPS, [str(k) for k in STEPS])
        ax.set_xlabel("denoising steps K")
        ax.set_title(title, fontsize=10)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    print(f"wrote {HERE / 'results.md'}, results.json, results.png")


if __name__ == "__main__":
    main()

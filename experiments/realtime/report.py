"""Study: real time on a laptop CPU. Reads what the commands in this folder's README wrote here and writes
results.md (every table) and results.png (the figures).

    .venv/bin/python experiments/realtime/report.py

Inputs: <name>.eval.json (`python -m worldmodels.evaluate ... --out`), bench_denoiser.txt and bench_decode.txt
(`python -m worldmodels.bench --only denoiser|decode`), bench_browser.md (`node web/e2e/bench.mjs`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
BREAKOUT = {  # eval file stem -> label
    "breakout_seed_budget": "seed-scale TinyDenoiser (2.34M), 72 steps",
    "breakout_seed_budget80": "seed-scale TinyDenoiser (2.34M), 80 steps (the same wall-clock budget)",
    "breakout_cpu": "TinyDenoiser w32 (breakout_cpu, the previous default)",
    "breakout_fast": "FastDenoiser (breakout_fast, shipped)",
}
FLAPPY = {
    "flappy_cpu": "flappy_cpu (seed attention, window slides; the previous default)",
    "flappy_fast_1500": "flappy_fast at 1,500 steps (sliding window, ring cache)",
    "flappy_fast": "flappy_fast, 3,000 steps (shipped)",
}
HORIZONS = ("1", "4", "8", "16", "32")
FLAPPY_ROWS = (  # (part, key, label, format)
    ("teacher_forced", "acc_bird_y", "bird_y exact (teacher-forced)", "{:.3f}"),
    ("teacher_forced", "acc1_bird_y", "bird_y within 1 bin", "{:.3f}"),
    ("teacher_forced", "acc_pipe_x", "pipe_x exact", "{:.3f}"),
    ("teacher_forced", "stable_gap_exact", "stable gap exact", "{:.3f}"),
    ("rollout", "drift_horizon_mean", "drift horizon, mean frames", "{:.1f}"),
    ("rollout", "drift_horizon_median", "drift horizon, median frames", "{:.0f}"),
    ("rollout", "deaths_within_1", "deaths within +-1 frame", "{:.3f}"),
    ("rollout", "phantom_death_rate", "phantom-death rate", "{:.3f}"),
    ("rollout", "missed_death_rate", "missed-death rate", "{:.3f}"),
    ("rollout", "malformed_frames", "malformed frames", "{}"),
)


def load(names: dict[str, str]) -> dict[str, dict]:
    missing = [f"{n}.eval.json" for n in names if not (HERE / f"{n}.eval.json").exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run the README's evaluate commands first")
    return {label: json.loads((HERE / f"{n}.eval.json").read_text()) for n, label in names.items()}


def breakout_table(results: dict) -> list[str]:
    lines = ["| model | one-step PSNR (dB) | one-step ball (px) | one-step paddle (px) | brick acc. | "
             + " | ".join(f"rollout ball @{h} (px)" for h in HORIZONS) + " | rollout PSNR @32 |",
             "|---|---|---|---|---|" + "---|" * (len(HORIZONS) + 1)]
    rows = [(label, r["one_step"]["model"], r["rollout"]["model"]) for label, r in results.items()]
    any_result = next(iter(results.values()))
    copy = "copy last frame"
    rows.append((copy, any_result["one_step"][copy], any_result["rollout"][copy]))
    for label, one, roll in rows:
        lines.append(f"| {label} | {one['psnr']:.2f} | {one['ball_err_px']:.2f} | {one['paddle_err_px']:.2f} | "
                     f"{one['brick_acc']:.3f} | " + " | ".join(f"{roll[h]['ball_err_px']:.2f}" for h in HORIZONS)
                     + f" | {roll['32']['psnr']:.2f} |")
    return lines


def flappy_table(results: dict) -> list[str]:
    labels = list(results)
    lines = ["| all held-out policies | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for part, key, label, fmt in FLAPPY_ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt.format(results[m][part]["all"][key]) for m in labels) + " |")
    lines.append("| episodes | " + " | ".join(str(results[m]["rollout"]["all"]["episodes"]) for m in labels) + " |")
    return lines


def browser_rows(markdown: str) -> list[tuple[str, str, dict[str, str]]]:
    """(model label, measure, {column: cell}) of the bench page's table."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    out = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out.append((cells[0], cells[1], dict(zip(head[2:], cells[2:], strict=True))))
    return out


def number(cell: str) -> float:
    match = re.match(r"[\d.]+", cell)
    return float(match.group()) if match else float("nan")


def main() -> None:
    breakout, flappy = load(BREAKOUT), load(FLAPPY)
    games = {r["games"] for r in breakout.values()}
    md = [f"## Breakout fidelity (`evaluate`: {games.pop()} held-out games, seed 0, each model's default sampler, K=1)",
          "", *breakout_table(breakout), "",
          "## Flappy fidelity (`evaluate --episodes-per-policy 50`: the same held-out episodes for every model)",
          "", *flappy_table(flappy), ""]
    for name, title in (("bench_denoiser.txt", "Breakout denoiser, onnxruntime in Python (`bench --only denoiser`)"),
                        ("bench_decode.txt", "Flappy decoding, onnxruntime in Python (`bench --only decode`)")):
        if (HERE / name).exists():
            md += [f"## {title}", "", "```", (HERE / name).read_text().strip(), "```", ""]
    browser = (HERE / "bench_browser.md").read_text() if (HERE / "bench_browser.md").exists() else ""
    if browser:
        md += ["## onnxruntime-web in headless Chromium (the bench page, `web/e2e/bench.mjs`)", "", browser.strip(), ""]
    (HERE / "results.md").write_text("\n".join(md))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for label, r in breakout.items():
        axes[0].plot([int(h) for h in HORIZONS], [r["rollout"]["model"][h]["ball_err_px"] for h in HORIZONS],
                     marker="o", label=label)
    copy = next(iter(breakout.values()))["rollout"]["copy last frame"]
    axes[0].plot([int(h) for h in HORIZONS], [copy[h]["ball_err_px"] for h in HORIZONS], "k--",
                 label="copy start frame")
    axes[0].set(xscale="log", xlabel="autonomous rollout frame", ylabel="ball position error (px)",
                title="Breakout rollout ball error (lower is better)")
    axes[0].set_xticks([int(h) for h in HORIZONS], HORIZONS)
    axes[0].legend(fontsize=7)
    rows = browser_rows(browser) if browser else []
    column = "WASM 2 threads"
    dream = [(m.split(" (")[0].replace("breakout: ", "") + "\n(" + m.split(" (", 1)[1], number(c.get(column, "-")))
             for m, measure, c in rows if measure == "dream frames/s, 1 step"]
    if dream:
        axes[1].barh(range(len(dream)), [v for _, v in dream], color="tab:green")
        axes[1].set_yticks(range(len(dream)), [n for n, _ in dream], fontsize=7)
        axes[1].axvline(30, color="k", linestyle="--", label="30 frames/s")
        axes[1].set(xlabel=f"Breakout dream frames/s, 1 sampler step, {column}", title="headless Chromium, 2 cores")
        axes[1].legend(fontsize=7)
    decode = [(m.split(" (", 1)[1].rstrip(")") + "\n" + measure, number(c.get("WASM 1 thread", "-")) / 10)
              for m, measure, c in rows
              if m.startswith("flappy") and measure.split(",")[0] in ("1 call per token", "frame graph")
              and "tokens/s" in c.get("WASM 1 thread", "")]
    if decode:
        axes[2].barh(range(len(decode)), [v for _, v in decode], color="tab:blue")
        axes[2].set_yticks(range(len(decode)), [n for n, _ in decode], fontsize=7)
        axes[2].axvline(500, color="k", linestyle="--", label="500 frames/s")
        axes[2].set(xlabel="Flappy frames/s (tokens/s / 10), WASM 1 thread",
                    title="headless Chromium, 384-token window")
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()

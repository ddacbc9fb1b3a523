"""One way to decode an export: `from_manifest` builds the decoder the player runs from the manifest alone (graphs,
cache kind, slide rule, slide_frames, temperature), with no torch; a backend must be told its cache kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from worldmodels.flappy.decoding.backends import OrtBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder, FrameGraphDecoder, from_manifest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED, OLDER = ROOT / "models" / "flappy" / "flappy.json", ROOT / "models" / "flappy_cpu" / "flappy.json"


def play(decoder: FrameDecoder, context, frames: int, seed: int = 3) -> list[list[int]]:
    decoder.reset(context, seed=seed)
    actions = np.random.default_rng(seed).integers(0, 2, frames)
    return [decoder.step(int(a)).tolist() for a in actions]


def test_the_shipped_export_gets_its_frame_graph_and_ring():
    decoder = from_manifest(SHIPPED.with_suffix(".onnx"))  # the .onnx names its manifest
    manifest = json.loads(SHIPPED.read_text())
    assert isinstance(decoder, FrameGraphDecoder) and decoder.ring is manifest["decoding"]["sliding_window"] is True
    assert decoder.slide_frames == manifest["decoding"]["slide_frames"]
    assert decoder.temperature == manifest["decoding"]["temperature"]


def test_per_token_decoding_of_an_export_makes_the_frame_graphs_frames():
    context = json.loads(SHIPPED.read_text())["start_contexts"][0]
    frames = play(from_manifest(SHIPPED), context, 180)
    assert play(from_manifest(SHIPPED, per_token=True), context, 180) == frames


def test_an_export_without_a_frame_graph_slides_as_the_player_does():
    """models/flappy_cpu predates the frame graph and the sliding window: an ordered window that slides when it is
    full (the player's per-token path), not before a frame."""
    decoder = from_manifest(OLDER)
    assert type(decoder) is FrameDecoder and not decoder.ring and not decoder.slide_before_frame


def test_a_backend_must_be_told_its_cache_kind():
    with pytest.raises(TypeError, match="ring"):
        OrtBackend.from_files(SHIPPED.with_suffix(".onnx"), SHIPPED.with_name("flappy.prefill.onnx"))


def test_a_reset_with_a_seed_plays_as_a_new_decoder_with_that_seed():
    context = json.loads(SHIPPED.read_text())["start_contexts"][0]
    reused = from_manifest(SHIPPED, seed=0)
    play(reused, context, 20, seed=1)
    assert play(reused, context, 40, seed=7) == play(from_manifest(SHIPPED, seed=7), context, 40, seed=7)


def test_decoding_an_export_imports_no_torch():
    probe = ("import json, sys; from worldmodels.flappy.decoding.decoder import from_manifest; "
             f"d = from_manifest({str(SHIPPED)!r}); d.reset(json.load(open({str(SHIPPED)!r}))['start_contexts'][0]); "
             "d.step(0); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]

"""The Flappy token spec: id layout, exact-to-a-bin round trips, the hidden rule, legal masks and the JSON contract.

    python -m pytest tests/flappy/test_tokens.py
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from worldmodels.flappy.game import GEOMETRY, FlappyGame, HeuristicPolicy, RandomPolicy, record_episode, stack_states
from worldmodels.flappy.tokens import (
    SPEC,
    TokenSpec,
    decode_episode,
    decode_frame,
    encode_episode,
    encode_frame,
    is_well_formed,
)

MARKER_HIDDEN, MARKER_VISIBLE = SPEC.label_id("marker", "hidden"), SPEC.label_id("marker", "visible")


@pytest.fixture(scope="module")
def episodes():
    """(states, actions) of a long heuristic episode (hidden slot at the start, respawns) and two short deaths."""
    game = FlappyGame()
    runs = [record_episode(game, HeuristicPolicy(), seed=1, max_frames=300)]
    runs += [record_episode(game, RandomPolicy(0.3), seed=seed, max_frames=300) for seed in (4, 5)]
    game.close()
    return [(states, actions) for states, actions, _ in runs]


def test_layout_and_vocabulary():
    assert SPEC.tokens_per_frame == 10 and SPEC.state_tokens_per_frame == 9
    assert [s.name for s in SPEC.frame] == ["bird_y", "pipe0_marker", "pipe0_x", "pipe0_gap_y", "pipe1_marker",
                                            "pipe1_x", "pipe1_gap_y", "respawn", "done", "action"]
    ranges = [SPEC.id_range(f.name) for f in SPEC.fields]
    assert ranges[0][0] == 0 and ranges[-1][1] == SPEC.vocab_size == 362
    assert all(stop == next_start for (_, stop), (next_start, _) in itertools.pairwise(ranges))
    assert all(start < stop for start, stop in ranges)
    sizes = {f.name: SPEC.id_range(f.name)[1] - SPEC.id_range(f.name)[0] for f in SPEC.fields}
    assert sizes == {"bird_y": 128, "marker": 2, "pipe_x": 129, "gap_y": 97, "respawn": 2, "done": 2, "action": 2}
    assert SPEC.slot_ranges()[2] == SPEC.slot_ranges()[5] == SPEC.id_range("pipe_x")
    assert SPEC.ordinal_fields == ("bird_y", "pipe_x", "gap_y")
    assert SPEC.marker_fields == ("marker", "respawn", "done")


def test_round_trip_is_exact_to_a_bin(episodes):
    for states, actions in episodes:
        decoded, decoded_actions = decode_episode(encode_episode(states, actions))
        truth, back = stack_states(states), stack_states(decoded)
        np.testing.assert_array_equal(decoded_actions, actions)
        for key in ("visible", "respawn", "done"):
            np.testing.assert_array_equal(back[key], truth[key], err_msg=key)
        np.testing.assert_array_less(np.abs(back["bird_y"] - truth["bird_y"]), SPEC.bin_width("bird_y") / 2 + 1e-9)
        for name in ("pipe_x", "gap_y"):
            shown = truth["visible"]
            error = np.abs(back[name][shown] - truth[name][shown])
            np.testing.assert_array_less(error, SPEC.bin_width(name) / 2 + 1e-9)
            assert np.isnan(back[name][~shown]).all()


def test_round_trip_is_not_trivially_coarse():
    # Neighbouring values one bin apart must get neighbouring tokens (the ordinal fields are really binned).
    lo, hi = SPEC.field_named("pipe_x").pixel_range
    step = SPEC.bin_width("pipe_x")
    bins = SPEC.to_bins("pipe_x", lo + step * (np.arange(128) + 0.5))
    np.testing.assert_array_equal(bins, np.arange(128))
    np.testing.assert_array_equal(SPEC.to_bins("bird_y", [-1e4, 1e4, SPEC.field_named("bird_y").pixel_range[1]]),
                                  [0, 127, 127])


def test_hidden_pipes_encode_to_the_hidden_ids_and_decode_as_hidden(episodes):
    states, actions = episodes[0]
    assert not states[0].visible[1]
    frame = encode_frame(states[0], actions[0])
    assert frame[4] == MARKER_HIDDEN and frame[1] == MARKER_VISIBLE
    assert frame[5] == SPEC.hidden_id("pipe_x") == SPEC.id_range("pipe_x")[1] - 1
    assert frame[6] == SPEC.hidden_id("gap_y") == SPEC.id_range("gap_y")[1] - 1
    state, action = decode_frame(frame)
    assert state.visible == (True, False) and np.isnan(state.pipe_x[1]) and np.isnan(state.gap_y[1])
    assert action == actions[0]
    state_only, no_action = decode_frame(frame[:9])
    assert no_action is None and state_only.visible == state.visible


def test_legal_mask_enforces_ranges_and_the_hidden_rule():
    for index, (start, stop) in enumerate(SPEC.slot_ranges()):
        mask = SPEC.legal_mask(index, [])
        assert mask.shape == (SPEC.vocab_size,) and mask.dtype == bool
        np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(start, stop))
    prefix = np.zeros(9, np.int64)
    prefix[1], prefix[4] = MARKER_VISIBLE, MARKER_HIDDEN
    for index in (2, 3):  # pipe 0 is visible: bins only
        start, _ = SPEC.slot_ranges()[index]
        bins = SPEC.field_named(SPEC.frame[index].field).bins
        np.testing.assert_array_equal(np.flatnonzero(SPEC.legal_mask(index, prefix[:index])),
                                      np.arange(start, start + bins))
    for index in (5, 6):  # pipe 1 is hidden: its hidden id only
        np.testing.assert_array_equal(np.flatnonzero(SPEC.legal_mask(index, prefix[:index])),
                                      [SPEC.hidden_id(SPEC.frame[index].field)])
    bad = prefix.copy()
    bad[4] = 0
    with pytest.raises(ValueError, match="marker"):
        SPEC.legal_mask(5, bad[:5])


def test_episode_layout_puts_the_action_last_in_each_frame(episodes):
    states, actions = episodes[1]
    tokens = encode_episode(states, actions)
    assert tokens.dtype == np.int64 and tokens.shape == (len(states) * 10,)
    frames = tokens.reshape(-1, 10)
    np.testing.assert_array_equal(frames[:, 9], SPEC.id_range("action")[0] + actions)
    action_ids = (tokens >= SPEC.id_range("action")[0]) & (tokens < SPEC.id_range("action")[1])
    np.testing.assert_array_equal(np.flatnonzero(action_ids), np.arange(9, len(tokens), 10))
    np.testing.assert_array_equal(frames[-1], encode_frame(states[-1], actions[-1]))
    assert frames[-1, 8] == SPEC.label_id("done", "yes") and (frames[:-1, 8] == SPEC.label_id("done", "no")).all()
    with pytest.raises(ValueError, match="actions"):
        encode_episode(states, actions[:-1])


def test_json_round_trip_and_contents():
    d = json.loads(json.dumps(SPEC.to_json()))
    assert TokenSpec.from_json(d) == SPEC
    assert d["geometry"] == GEOMETRY and d["vocab_size"] == 362 and d["tokens_per_frame"] == 10
    assert [(g["marker_slot"], g["governed_slots"]) for g in d["hidden_rule"]["groups"]] == [(1, [2, 3]), (4, [5, 6])]
    assert d["special_tokens"]["pipe_x.hidden"] == SPEC.hidden_id("pipe_x")
    assert [s["start"] for s in d["slots"]] == [start for start, _ in SPEC.slot_ranges()]
    coarser = dataclasses.replace(SPEC, fields=tuple(
        dataclasses.replace(f, bins=64) if f.name == "pipe_x" else f for f in SPEC.fields))
    assert coarser.vocab_size == 298 and coarser.hidden_id("pipe_x") == 130 + 64
    assert TokenSpec.from_json(json.loads(json.dumps(coarser.to_json()))) == coarser
    with pytest.raises(ValueError, match="action"):
        dataclasses.replace(SPEC, frame=SPEC.frame[::-1])
    tampered = json.loads(json.dumps(d))
    tampered["fields"][3]["start"] += 1
    with pytest.raises(ValueError, match="inconsistent"):
        TokenSpec.from_json(tampered)


def test_is_well_formed_rejects_bad_frames(episodes):
    states, actions = episodes[0]
    frame = encode_frame(states[0], actions[0])
    assert is_well_formed(frame) and is_well_formed(frame[:9])
    wrong_field = frame.copy()
    wrong_field[2] = SPEC.id_range("gap_y")[0]  # a gap_y id where pipe 0's x belongs
    shown_but_hidden = frame.copy()
    shown_but_hidden[2] = SPEC.hidden_id("pipe_x")  # pipe 0 is marked visible
    hidden_but_shown = frame.copy()
    hidden_but_shown[5] = SPEC.id_range("pipe_x")[0]  # pipe 1 is marked hidden
    for bad in (wrong_field, shown_but_hidden, hidden_but_shown, frame[:8], np.append(frame, frame[0]),
                frame.reshape(2, 5)):
        assert not is_well_formed(bad)
    with pytest.raises(ValueError, match="malformed"):
        decode_frame(wrong_field)

"""The Flappy Bird token spec: the single source of truth for how a game frame becomes tokens and back.

A frame is 10 tokens, in this order (`SPEC.frame`):

    bird_y, pipe0_marker, pipe0_x, pipe0_gap_y, pipe1_marker, pipe1_x, pipe1_gap_y, respawn, done, action

and an episode is its frames concatenated: `[state_0 (9 tokens), action_0, state_1 (9 tokens), action_1, ...]`.
`action_t` is the action taken AFTER observing state t; it leads to state t + 1 (so a model predicts state t + 1's
9 tokens from everything up to and including action_t). The meaning of each field is in `worldmodels.flappy.game`.

Vocabulary: each field owns one contiguous id range, in the order of `SPEC.fields`; the two pipe slots share the
marker, pipe_x and gap_y ranges:

    field    kind     ids                 values
    bird_y   ordinal  0..127              128 bins over PIXEL_RANGES["bird_y"]
    marker   marker   128..129            hidden, visible
    pipe_x   ordinal  130..258            128 bins, then 258 = hidden
    gap_y    ordinal  259..355            96 bins, then 355 = hidden
    respawn  marker   356..357            no, yes
    done     marker   358..359            no, yes
    action   action   360..361            noop, flap          (vocab_size 362)

Ordinal values are normalized to [0, 1] over their pixel range (clipped) and binned uniformly:
`bin = min(bins - 1, floor(v * bins))`; decoding returns the bin centre `(bin + 0.5) / bins`, de-normalized, so a
round trip is within half a bin width. The hidden rule: a slot's legal ids are its field's range, plus one
conditional rule: if the pipe's marker is `hidden` its pipe_x and gap_y are their field's hidden id; if it is
`visible` they are bins. `legal_mask` and `is_well_formed` apply it; `SPEC.to_json()` states it for the TypeScript
decoder, which must read every id and bin count from that JSON (it goes into each export's manifest).

    python -c "import json; from worldmodels.flappy.tokens import SPEC; print(json.dumps(SPEC.to_json()))"

Tests: `python -m pytest tests/flappy/test_tokens.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from worldmodels.flappy.game import GEOMETRY, PIPE_SLOTS, PIXEL_RANGES, FlappyState, stack_states

FORMAT, VERSION = "flappy-tokens", 1
ORDINAL, MARKER, ACTION = "ordinal", "marker", "action"
# The state attribute a field reads, where the names differ.
STATE_ATTR = {"marker": "visible"}


@dataclass(frozen=True)
class Field:
    """One kind of token and its id range. Ordinal fields are binned pixel values (with one extra `hidden` id after
    the bins when `hideable`); marker and action fields have one id per label, label i meaning the value i."""

    name: str
    kind: str
    meaning: str
    bins: int = 0
    pixel_range: tuple[float, float] | None = None
    hideable: bool = False
    labels: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.bins + int(self.hideable) if self.kind == ORDINAL else len(self.labels)


@dataclass(frozen=True)
class Slot:
    """One token position in a frame: which field it takes its id from, and which pipe slot it describes."""

    name: str
    field: str
    pipe: int | None = None


def _pipe_slots(pipe: int) -> tuple[Slot, ...]:
    return (Slot(f"pipe{pipe}_marker", "marker", pipe), Slot(f"pipe{pipe}_x", "pipe_x", pipe),
            Slot(f"pipe{pipe}_gap_y", "gap_y", pipe))


@dataclass(frozen=True)
class TokenSpec:
    """Fields (in vocabulary order), the frame's slots (in sequence order; the action last) and the game geometry
    a renderer needs. Construct via `SPEC` or `TokenSpec.from_json`."""

    fields: tuple[Field, ...]
    frame: tuple[Slot, ...]
    geometry: dict = dataclasses.field(default_factory=lambda: dict(GEOMETRY), hash=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"token spec: duplicate field names in {names}")
        if any(slot.field not in names for slot in self.frame):
            raise ValueError("token spec: a slot names a field that the spec does not define")
        if self.field_named(self.frame[-1].field).kind != ACTION:
            raise ValueError("token spec: the last slot of a frame must be the action")
        for position, slot in enumerate(self.frame):
            if self.field_named(slot.field).hideable and slot.pipe not in self.marker_positions:
                raise ValueError(f"token spec: slot {slot.name} can be hidden but its pipe has no marker slot")
            if self.field_named(slot.field).hideable and self.marker_positions[slot.pipe] > position:
                raise ValueError(f"token spec: slot {slot.name} comes before its pipe's marker")

    # ---- ids ----------------------------------------------------------------------------------------------------

    def field_named(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @cached_property
    def offsets(self) -> dict[str, int]:
        sizes = [f.size for f in self.fields]
        return dict(zip((f.name for f in self.fields), np.cumsum([0, *sizes[:-1]]).tolist(), strict=True))

    def id_range(self, name: str) -> tuple[int, int]:
        """(start, stop) of a field's ids."""
        return self.offsets[name], self.offsets[name] + self.field_named(name).size

    def hidden_id(self, name: str) -> int:
        """The id an ordinal field takes when its pipe slot is hidden: the one after its bins."""
        return self.offsets[name] + self.field_named(name).bins

    def label_id(self, name: str, label: str) -> int:
        return self.offsets[name] + self.field_named(name).labels.index(label)

    @property
    def vocab_size(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def tokens_per_frame(self) -> int:
        return len(self.frame)

    @property
    def state_tokens_per_frame(self) -> int:
        return len(self.frame) - 1

    @property
    def ordinal_fields(self) -> tuple[str, ...]:
        """Fields whose neighbouring bins are close values (the loss gives them soft-bin targets)."""
        return tuple(f.name for f in self.fields if f.kind == ORDINAL)

    @property
    def marker_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == MARKER)

    def position_of(self, field: str) -> int:
        """Position in the frame of the first token of `field` (e.g. "done" -> 8)."""
        return next(i for i, slot in enumerate(self.frame) if slot.field == field)

    @cached_property
    def marker_positions(self) -> dict[int, int]:
        """Pipe slot -> position of its marker token in the frame."""
        return {slot.pipe: i for i, slot in enumerate(self.frame) if slot.field == "marker"}

    def hidden_groups(self) -> list[tuple[int, list[int]]]:
        """(marker position, positions of the tokens that marker governs) per pipe slot."""
        return [(m, [i for i, slot in enumerate(self.frame)
                     if slot.pipe == pipe and self.field_named(slot.field).hideable])
                for pipe, m in self.marker_positions.items()]

    def slot_ranges(self) -> list[tuple[int, int]]:
        """The legal (start, stop) id range of each position in a frame."""
        return [self.id_range(slot.field) for slot in self.frame]

    def legal_mask(self, slot_index: int, frame_prefix_tokens) -> np.ndarray:
        """bool[vocab]: the ids allowed at `slot_index` given the frame's tokens so far (the hidden rule applies
        once the prefix holds the slot's pipe marker)."""
        slot, prefix = self.frame[slot_index], np.asarray(frame_prefix_tokens, np.int64).reshape(-1)
        start, stop = self.id_range(slot.field)
        mask = np.zeros(self.vocab_size, bool)
        mask[start:stop] = True
        f = self.field_named(slot.field)
        marker_at = self.marker_positions.get(slot.pipe, len(prefix))
        if f.hideable and marker_at < len(prefix):
            marker = int(prefix[marker_at])
            if marker not in (self.label_id("marker", "hidden"), self.label_id("marker", "visible")):
                raise ValueError(f"legal_mask: token {marker} at position {marker_at} is not a marker")
            mask[start:stop] = False
            if marker == self.label_id("marker", "hidden"):
                mask[self.hidden_id(f.name)] = True
            else:
                mask[start:start + f.bins] = True
        return mask

    # ---- values <-> bins ----------------------------------------------------------------------------------------

    def to_bins(self, name: str, px) -> np.ndarray:
        f = self.field_named(name)
        lo, hi = f.pixel_range
        v = np.clip((np.asarray(px, np.float64) - lo) / (hi - lo), 0.0, 1.0)
        return np.minimum(f.bins - 1, np.floor(v * f.bins)).astype(np.int64)

    def from_bins(self, name: str, bins) -> np.ndarray:
        f = self.field_named(name)
        lo, hi = f.pixel_range
        return lo + (np.asarray(bins, np.float64) + 0.5) / f.bins * (hi - lo)

    def bin_width(self, name: str) -> float:
        f = self.field_named(name)
        return (f.pixel_range[1] - f.pixel_range[0]) / f.bins

    # ---- frames <-> tokens --------------------------------------------------------------------------------------

    def encode_episode(self, states: list[FlappyState], actions) -> np.ndarray:
        """int64 [T * tokens_per_frame]: frame t's state tokens followed by actions[t]."""
        actions = np.asarray(actions, np.int64).reshape(-1)
        if len(actions) != len(states):
            raise ValueError(f"encode_episode: {len(states)} states but {len(actions)} actions (need one per state)")
        values = stack_states(states)
        values["action"] = actions
        return self.encode_values(values)

    def encode_values(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """int64 [T * tokens_per_frame] from one array of T values per state attribute the slots read (a field's
        name; `visible` for the marker), `(T, pipes)` for a pipe slot's, and `action`."""
        frames = len(values["action"])
        tokens = np.empty((frames, self.tokens_per_frame), np.int64)
        for position, slot in enumerate(self.frame):
            tokens[:, position] = self._encode_slot(slot, values)
        return tokens.reshape(-1)

    def _encode_slot(self, slot: Slot, values: dict[str, np.ndarray]) -> np.ndarray:
        f = self.field_named(slot.field)
        value = values[STATE_ATTR.get(f.name, f.name)]
        if slot.pipe is not None:
            value = value[:, slot.pipe]
        if f.kind != ORDINAL:
            value = value.astype(np.int64)
            if value.size and (value.min() < 0 or value.max() >= f.size):
                raise ValueError(f"encode: {f.name} values must be 0..{f.size - 1}, got {np.unique(value)}")
            return self.offsets[f.name] + value
        if slot.pipe is None:
            return self.offsets[f.name] + self.to_bins(f.name, value)
        visible = values["visible"][:, slot.pipe]
        # Hidden pipes carry NaN; bin a harmless stand-in and overwrite it with the hidden id.
        ids = self.offsets[f.name] + self.to_bins(f.name, np.where(visible, value, f.pixel_range[0]))
        return np.where(visible, ids, self.hidden_id(f.name))

    def encode_frame(self, state: FlappyState, action: int) -> np.ndarray:
        return self.encode_episode([state], [action])

    def well_formed_frames(self, frames) -> np.ndarray:
        """bool per frame of an int array [..., k], k = tokens_per_frame or state_tokens_per_frame (no action)."""
        frames = np.asarray(frames, np.int64)
        if frames.shape[-1] not in (self.state_tokens_per_frame, self.tokens_per_frame):
            return np.zeros(frames.shape[:-1], bool)
        ranges = np.array(self.slot_ranges()[:frames.shape[-1]])
        ok = ((frames >= ranges[:, 0]) & (frames < ranges[:, 1])).all(axis=-1)
        for marker_at, governed in self.hidden_groups():
            hidden = frames[..., marker_at] == self.label_id("marker", "hidden")
            for position in governed:
                ok &= (frames[..., position] == self.hidden_id(self.frame[position].field)) == hidden
        return ok

    def is_well_formed(self, frame_tokens) -> bool:
        """One frame (10 tokens, or its 9 state tokens): every token in its slot's range and the hidden rule."""
        frame_tokens = np.asarray(frame_tokens)
        return frame_tokens.ndim == 1 and bool(self.well_formed_frames(frame_tokens))

    def decode_episode(self, tokens) -> tuple[list[FlappyState], np.ndarray | None]:
        """Tokens [T * k] or [T, k] (k = 10, or 9 without actions) -> (states, actions or None).
        Hidden pipes decode as visible=False with NaN pipe_x and gap_y. Raises ValueError on a malformed frame."""
        tokens = np.asarray(tokens, np.int64)
        if tokens.ndim == 1 and tokens.size % self.tokens_per_frame:
            raise ValueError(f"decode: {tokens.size} tokens is not a whole number of {self.tokens_per_frame}-token "
                             f"frames")
        frames = tokens if tokens.ndim == 2 else tokens.reshape(-1, self.tokens_per_frame)
        width = frames.shape[1]
        ok = self.well_formed_frames(frames)
        if not ok.all():
            raise ValueError(f"decode: malformed frame(s) at index {np.flatnonzero(~ok)[:5].tolist()} "
                             f"(check with is_well_formed; each frame is {self.tokens_per_frame} tokens)")
        n = len(frames)
        values = {"bird_y": np.zeros(n), "respawn": np.zeros(n, bool), "done": np.zeros(n, bool),
                  "visible": np.zeros((n, PIPE_SLOTS), bool), "pipe_x": np.full((n, PIPE_SLOTS), np.nan),
                  "gap_y": np.full((n, PIPE_SLOTS), np.nan), "action": None}
        for position, slot in enumerate(self.frame[:width]):
            f = self.field_named(slot.field)
            local = frames[:, position] - self.offsets[f.name]
            if f.kind == ORDINAL:
                decoded = np.where(local < f.bins, self.from_bins(f.name, local), np.nan)
            else:
                decoded = local.astype(bool) if f.kind == MARKER else local
            name = STATE_ATTR.get(f.name, f.name)
            if slot.pipe is None:
                values[name] = decoded
            else:
                values[name][:, slot.pipe] = decoded
        states = [
            FlappyState(bird_y=float(values["bird_y"][t]), visible=tuple(bool(v) for v in values["visible"][t]),
                        pipe_x=tuple(float(v) for v in values["pipe_x"][t]),
                        gap_y=tuple(float(v) for v in values["gap_y"][t]),
                        respawn=bool(values["respawn"][t]), done=bool(values["done"][t]))
            for t in range(n)
        ]
        return states, values["action"]

    def decode_values(self, tokens) -> dict[str, np.ndarray]:
        """Tokens [T * k] or [T, k] of a spec without pipe slots -> one array of T values per field: an ordinal
        field's bin centres, a marker's bool, the action's index (the encode_values inverse, within half a bin).
        Raises ValueError on a malformed frame."""
        if self.marker_positions:
            raise ValueError("decode_values: this spec has pipe slots; decode it with decode_episode")
        tokens = np.asarray(tokens, np.int64)
        frames = tokens if tokens.ndim == 2 else tokens.reshape(-1, self.tokens_per_frame)
        ok = self.well_formed_frames(frames)
        if not ok.all():
            raise ValueError(f"decode: malformed frame(s) at index {np.flatnonzero(~ok)[:5].tolist()}")
        values = {}
        for position, slot in enumerate(self.frame[:frames.shape[1]]):
            f = self.field_named(slot.field)
            local = frames[:, position] - self.offsets[f.name]
            values[f.name] = (self.from_bins(f.name, local) if f.kind == ORDINAL
                              else local.astype(bool) if f.kind == MARKER else local)
        return values

    def decode_frame(self, tokens) -> tuple[FlappyState, int | None]:
        """One frame's 10 tokens -> (state, action); 9 state tokens -> (state, None)."""
        tokens = np.asarray(tokens, np.int64).reshape(1, -1)
        states, actions = self.decode_episode(tokens)
        return states[0], None if actions is None else int(actions[0])

    # ---- JSON ---------------------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Everything a decoder or renderer needs, as plain JSON types."""
        fields = []
        for f in self.fields:
            start, stop = self.id_range(f.name)
            entry = {"name": f.name, "kind": f.kind, "meaning": f.meaning, "start": start, "stop": stop,
                     "size": f.size, "bins": f.bins, "hideable": f.hideable, "labels": list(f.labels),
                     "pixel_range": list(f.pixel_range) if f.pixel_range else None,
                     "hidden_id": self.hidden_id(f.name) if f.hideable else None}
            fields.append(entry)
        special = {f"{f.name}.{label}": self.label_id(f.name, label) for f in self.fields for label in f.labels}
        special.update({f"{f.name}.hidden": self.hidden_id(f.name) for f in self.fields if f.hideable})
        return {
            "format": FORMAT,
            "version": VERSION,
            "tokens_per_frame": self.tokens_per_frame,
            "state_tokens_per_frame": self.state_tokens_per_frame,
            "vocab_size": self.vocab_size,
            "fields": fields,
            "slots": [{"index": i, "name": s.name, "field": s.field, "pipe": s.pipe, "start": a, "stop": b}
                      for i, (s, (a, b)) in enumerate(zip(self.frame, self.slot_ranges(), strict=True))],
            "ordinal_fields": list(self.ordinal_fields),
            "marker_fields": list(self.marker_fields),
            "special_tokens": special,
            "hidden_rule": {
                "description": "If a pipe's marker token is marker.hidden, the slots it governs must be their "
                               "field's hidden_id; if it is marker.visible they must be one of the field's bins "
                               "(start .. start + bins - 1). All other slots: any id in [start, stop).",
                "groups": [{"marker_slot": m, "governed_slots": g} for m, g in self.hidden_groups()],
            },
            "binning": {
                "encode": "v = clip((px - lo) / (hi - lo), 0, 1); bin = min(bins - 1, floor(v * bins)); "
                          "id = start + bin",
                "decode": "px = lo + (bin + 0.5) / bins * (hi - lo), with [lo, hi] = pixel_range",
            },
            "sequence": "frames concatenated, each [state tokens in slot order, action]; the action of frame t is "
                        "taken after observing state t and leads to state t + 1",
            "geometry": dict(self.geometry),
        }

    @classmethod
    def from_json(cls, d: dict) -> TokenSpec:
        """The spec `to_json` wrote; raises ValueError if the derived ids in `d` disagree with its fields."""
        try:
            spec = cls(
                fields=tuple(Field(name=f["name"], kind=f["kind"], meaning=f["meaning"], bins=f["bins"],
                                   pixel_range=tuple(f["pixel_range"]) if f["pixel_range"] else None,
                                   hideable=f["hideable"], labels=tuple(f["labels"])) for f in d["fields"]),
                frame=tuple(Slot(name=s["name"], field=s["field"], pipe=s["pipe"]) for s in d["slots"]),
                geometry=dict(d["geometry"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"token spec JSON lacks or mistypes {err}; regenerate it with TokenSpec.to_json()"
                             ) from err
        if spec.to_json() != d:
            raise ValueError("token spec JSON is inconsistent (ids, ranges or format differ from what its fields "
                             "imply); regenerate it with TokenSpec.to_json()")
        return spec


SPEC = TokenSpec(
    fields=(
        Field("bird_y", ORDINAL, "top edge of the bird, px down from the screen top", bins=128,
              pixel_range=PIXEL_RANGES["bird_y"]),
        Field("marker", MARKER, "whether a pipe slot holds a pipe on screen", labels=("hidden", "visible")),
        Field("pipe_x", ORDINAL, "left edge of the slot's pipe pair, px", bins=128,
              pixel_range=PIXEL_RANGES["pipe_x"], hideable=True),
        Field("gap_y", ORDINAL, "centre of the slot's gap, px down from the screen top", bins=96,
              pixel_range=PIXEL_RANGES["gap_y"], hideable=True),
        Field("respawn", MARKER, "the game recycled a pipe this frame: slot 0 takes slot 1's pipe and slot 1 the "
              "next pipe, with a new gap", labels=("no", "yes")),
        Field("done", MARKER, "the bird died this frame (pipe or ground): the episode's last frame",
              labels=("no", "yes")),
        Field("action", ACTION, "the player's input after seeing this frame; it leads to the next frame",
              labels=("noop", "flap")),
    ),
    frame=(Slot("bird_y", "bird_y"), *(s for pipe in range(PIPE_SLOTS) for s in _pipe_slots(pipe)),
           Slot("respawn", "respawn"), Slot("done", "done"), Slot("action", "action")),
)

encode_frame = SPEC.encode_frame
encode_episode = SPEC.encode_episode
decode_frame = SPEC.decode_frame
decode_episode = SPEC.decode_episode
is_well_formed = SPEC.is_well_formed

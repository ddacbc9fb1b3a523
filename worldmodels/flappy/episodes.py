"""Recorded Flappy Bird episodes on disk: the store's format, its writer, and `EpisodeStore`, which reads it.

The collector (`worldmodels.flappy.collector`) records the episodes once per config; `worldmodels.flappy.data`
cuts the loaded store into training windows.

Episode store format: one directory, `cache_dir/flappy/episodes-<hash>/`, holding E episodes:

    tokens.npy    int16 [N]      every episode's tokens (`worldmodels.flappy.tokens`), concatenated
    offsets.npy   int64 [E + 1]  episode e is tokens[offsets[e]:offsets[e + 1]]; offsets[0] = 0, offsets[E] = N
    frames.npy    int32 [E]      frames per episode (= token count / 10)
    policy.npy    int8  [E]      which policy played it: an index into manifest["policy_names"]
    score.npy     int32 [E]      pipes passed
    seed.npy      int64 [E]      the game's reset seed, so `FlappyGame().reset(seed)` + the actions replays it
    manifest.json format and version, the config that made it and its hash, counts, the policy id -> name table,
                  the held-out episode ids (`val_episodes`), each array file's sha256, dtype and shape, and
                  `manifest_sha256`: the sha256 of the rest of the manifest (`manifest_checksum`)

An episode ends with a done=yes frame, unless it was cut at the collector's max_frames. Loading verifies every file
against the manifest and raises `CacheError` naming the file and the problem. A manifest whose `manifest_sha256` no
longer matches was changed after it was written (it is written whole and renamed into place, so this is an edit):
that raises `EditedManifestError`, which the collector does not rebuild over, since the edit was somebody's intent;
the message says to delete the directory to record the store afresh.

    python -c "from worldmodels.flappy.episodes import EpisodeStore; \
s = EpisodeStore('.cache/flappy/episodes-<hash>'); print(s.num_episodes, s.policy_names)"
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from worldmodels.core.errors import UserError
from worldmodels.flappy.tokens import SPEC

FORMAT, VERSION = "flappy-episodes", 2  # 2: the manifest carries its own checksum
MANIFEST, CHECKSUM = "manifest.json", "manifest_sha256"
ARRAYS = {"tokens": np.int16, "offsets": np.int64, "frames": np.int32, "policy": np.int8, "score": np.int32,
          "seed": np.int64}


class CacheError(UserError):
    """A cached file is missing, damaged or made by another config: the collector records the store afresh."""


class EditedManifestError(UserError):
    """A store's manifest no longer matches its own checksum: someone changed it (`val_episodes`, say), and loading
    it would use the change silently while rebuilding would silently discard it."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def manifest_checksum(manifest: dict) -> str:
    """The sha256 of `manifest`'s canonical JSON (sorted keys, no spaces), leaving out its own checksum field. The
    manifest holds every array file's sha256, so this covers the files too."""
    content = {key: value for key, value in manifest.items() if key != CHECKSUM}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_episodes(directory: Path, tokens: Sequence[np.ndarray], policy, score, seed, manifest: dict) -> None:
    """Write one store into an empty `directory`: the arrays from per-episode token arrays, then the manifest
    (last, so a directory without one is plainly unfinished). `manifest` must hold `policy_names`, `val_episodes`
    and whatever describes the config; counts, file checksums and the manifest's own are added here."""
    directory = Path(directory)
    frames = np.array([len(t) // SPEC.tokens_per_frame for t in tokens], np.int32)
    offsets = np.concatenate([[0], np.cumsum(frames.astype(np.int64) * SPEC.tokens_per_frame)])
    # Streamed into a memory-mapped file: 50k episodes can reach 1 GB, and a concatenated copy would double it.
    out = np.lib.format.open_memmap(directory / "tokens.npy", mode="w+", dtype=np.int16, shape=(int(offsets[-1]),))
    for start, episode in zip(offsets[:-1], tokens, strict=True):
        out[start:start + len(episode)] = episode
    out.flush()
    del out
    arrays = {"offsets": offsets, "frames": frames, "policy": policy, "score": score, "seed": seed}
    for name, values in arrays.items():
        np.save(directory / f"{name}.npy", np.asarray(values, ARRAYS[name]))
    files = {}
    for name, dtype in ARRAYS.items():
        path = directory / f"{name}.npy"
        shape = [int(offsets[-1])] if name == "tokens" else list(np.shape(arrays[name]))
        files[path.name] = {"sha256": sha256_file(path), "dtype": np.dtype(dtype).name, "shape": shape}
    manifest = {"format": FORMAT, "version": VERSION, **manifest, "episodes": len(frames),
                "frames": int(frames.sum()), "tokens": int(offsets[-1]), "files": files}
    manifest = json.loads(json.dumps(manifest))  # the checksum is over what a reader will parse (lists, not tuples)
    manifest[CHECKSUM] = manifest_checksum(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


class EpisodeStore:
    """The recorded episodes of one store directory, memory-mapped and verified against the manifest."""

    def __init__(self, directory: str | Path, verify: bool = True):
        self.directory = Path(directory)
        self.manifest = self._read_manifest()
        files = self.manifest["files"]
        arrays = {}
        for name, dtype in ARRAYS.items():
            path = self.directory / f"{name}.npy"
            entry = files.get(path.name)
            if entry is None:
                raise CacheError(f"{self.directory / MANIFEST}: no entry for {path.name}")
            if not path.is_file():
                raise CacheError(f"{path}: missing")
            if verify and sha256_file(path) != entry["sha256"]:
                raise CacheError(f"{path}: sha256 does not match the manifest (damaged or partly written)")
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except ValueError as err:
                raise CacheError(f"{path}: not a readable .npy file ({err})") from err
            if arrays[name].dtype != dtype or list(arrays[name].shape) != entry["shape"]:
                raise CacheError(f"{path}: {arrays[name].dtype}{list(arrays[name].shape)} but the manifest says "
                                 f"{entry['dtype']}{entry['shape']}")
        self.tokens, self.offsets, self.frames = arrays["tokens"], arrays["offsets"], arrays["frames"]
        self.policy, self.score, self.seed = arrays["policy"], arrays["score"], arrays["seed"]
        self.policy_names: tuple[str, ...] = tuple(self.manifest["policy_names"])
        self.val_ids = np.array(sorted(self.manifest["val_episodes"]), np.int64)
        self.train_ids = np.setdiff1d(np.arange(self.num_episodes), self.val_ids)
        self._check_consistent()

    def _read_manifest(self) -> dict:
        path = self.directory / MANIFEST
        if not path.is_file():
            raise CacheError(f"{path}: missing (the store was never finished)")
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CacheError(f"{path}: not valid JSON ({err})") from err
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise CacheError(f"{path}: format {manifest.get('format')!r} v{manifest.get('version')}, "
                             f"expected {FORMAT!r} v{VERSION}")
        if manifest.get(CHECKSUM) != manifest_checksum(manifest):
            raise EditedManifestError(f"{path}: changed since it was written ({CHECKSUM} does not match its content); "
                                      f"a store is not edited by hand: delete {self.directory} to record it afresh")
        return manifest

    def _check_consistent(self) -> None:
        e, offsets, val = self.num_episodes, np.asarray(self.offsets), self.val_ids
        problems = [
            (self.manifest["episodes"] != e, f"manifest says {self.manifest['episodes']} episodes, files hold {e}"),
            (offsets[0] != 0 or offsets[-1] != len(self.tokens), "offsets do not span tokens.npy"),
            (not np.array_equal(np.diff(offsets), self.frames.astype(np.int64) * SPEC.tokens_per_frame),
             "offsets disagree with frames.npy"),
            (e and self.frames.min() < 1, "an episode has no frames"),
            (e and not 0 <= self.policy.min() <= self.policy.max() < len(self.policy_names),
             "policy.npy has ids outside manifest policy_names"),
            (len(np.unique(val)) != len(val) or (len(val) > 0 and (val[0] < 0 or val[-1] >= e)),
             "val_episodes are not distinct episode ids"),
        ]
        for broken, problem in problems:
            if broken:
                raise CacheError(f"{self.directory}: {problem}")

    # Worker processes get the directory, not the arrays: they map the same files instead of copying them.
    def __getstate__(self) -> dict:
        return {"directory": self.directory}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"], verify=False)

    @property
    def num_episodes(self) -> int:
        return len(self.frames)

    def episode(self, i: int) -> np.ndarray:
        """Episode i's tokens, int64 [frames * 10]."""
        return np.asarray(self.tokens[self.offsets[i]:self.offsets[i + 1]], np.int64)

    def policy_name(self, i: int) -> str:
        return self.policy_names[self.policy[i]]

    def policy_ids(self, name: str) -> np.ndarray:
        """The ids of the episodes played by policy `name`."""
        if name not in self.policy_names:
            raise UserError(f"no policy {name!r} in {self.directory} (known: {', '.join(self.policy_names)})")
        return np.flatnonzero(np.asarray(self.policy) == self.policy_names.index(name))

"""The batched decode graph of a Flappy export: one token for each of N dreams in one onnxruntime call
(`worldmodels.dream.vector`).

    inputs  tokens (B, 1), position (B,), k_cache, v_cache (layers, B, heads, context, head_dim), cache_len (B,)
    outputs logits (B, vocab), k_new, v_new (layers, B, heads, 1, head_dim), slots (B, 1)

As the decode graph, except that it returns only the new token's keys and values and the cache slot they belong in
(the caller writes them in place and sets cache_len += 1, at most context for the ring): the decode graph returns
the whole cache, and copying it costs more than the model once B is more than a few.

The player's graphs are batch-1 (onnxruntime-web runs them faster so). `export_flappy` writes `<name>.batch.onnx`
beside them since this graph existed; for an export without one,

    python -m worldmodels.flappy.batch_graph models/flappy/flappy.json

rebuilds the PyTorch model from the export's own weights (the decode graph's initializers: embeddings, norms and the
transposed linear weights, in graph order), checks that it reproduces the batch-1 graph's logits over a decode
from a start context, writes the batched graph and adds `batch_onnx` to the manifest. Needs torch; reading the
batched graph does not.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.files import write_atomic
from worldmodels.core.manifest import OPSET, ExportError, read_manifest, write_manifest
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.decoding.backends import OrtBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.graphs import BATCH_OUTPUTS, DECODE_INPUTS
from worldmodels.flappy.transformer import TokenTransformer

PARITY_FRAMES = 60  # frames decoded by the rebuilt model and the export's graph before the batched graph is written


def model_config(manifest: dict) -> TransformerConfig:
    fields = TransformerConfig.__dataclass_fields__
    return TransformerConfig(**{k: v for k, v in manifest["model"].items() if k in fields})


def net_from_decode_graph(decode_path: Path, cfg: TransformerConfig) -> TokenTransformer:
    """The TokenTransformer whose decode graph `decode_path` is: named initializers by name, the linear layers'
    (transposed) weights in the order the graph's MatMul nodes read them (per block qkv, proj, mlp in, mlp out;
    the tied output head last)."""
    graph = onnx.load(str(decode_path)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    net = TokenTransformer(cfg).eval()
    state = net.state_dict()
    named = {k: v for k, v in weights.items() if k.startswith("model.")}
    matmuls = []
    for node in graph.node:
        if node.op_type == "MatMul":
            matmuls += [name for name in node.input if name in weights and name not in named and name not in matmuls]
    linear = [k for k in state if k.endswith(".weight") and ("attn." in k or "mlp." in k)]
    if len(matmuls) != len(linear) + 1:
        raise ExportError(f"{decode_path}: {len(matmuls)} weight matrices, expected {len(linear) + 1} for "
                          f"{cfg.layers} layers: not a decode graph of this model")
    rebuilt = {k[len("model."):]: torch.from_numpy(v.copy()) for k, v in named.items()}
    rebuilt.update({k: torch.from_numpy(weights[m].T.copy()) for k, m in zip(linear, matmuls, strict=False)})
    missing = set(state) - set(rebuilt)
    if missing:
        raise ExportError(f"{decode_path}: no weights for {sorted(missing)[:3]}")
    net.load_state_dict(rebuilt)
    head = weights[matmuls[-1]]
    if not np.allclose(head, net.embed.weight.detach().numpy().T):
        raise ExportError(f"{decode_path}: the output head is not the tied embedding")
    return net


def decode_parity(net: TokenTransformer, manifest: dict, folder: Path, frames: int = PARITY_FRAMES) -> float:
    """Max |logit difference| between the rebuilt model and the export's decode graph over `frames` frames of the
    same decode (same actions and uniforms; the tokens must agree too)."""
    decoding = manifest["decoding"]
    ring = bool(decoding.get("sliding_window", False))
    context = np.asarray(manifest["start_contexts"][0], np.int64)
    ort_backend = OrtBackend.from_files(folder / manifest["onnx"], folder / manifest["prefill_onnx"], ring=ring)
    decoders = [FrameDecoder(backend, slide_frames=decoding["slide_frames"], seed=0)
                for backend in (TorchBackend(net), ort_backend)]
    worst = 0.0
    for decoder in decoders:
        decoder.reset(context)
    with torch.no_grad():
        for action in np.random.default_rng(0).integers(0, 2, frames):
            a, b = (d.step(int(action)) for d in decoders)
            worst = max(worst, float(np.abs(decoders[0].logits - decoders[1].logits).max()))
            if not np.array_equal(a, b):
                raise ExportError("the rebuilt model makes other tokens than the export's decode graph")
    return worst


class BatchDecodeGraph(nn.Module):
    """One token per row, attending to the cache: logits, the token's keys and values, its cache slot."""

    def __init__(self, model: TokenTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens, position, k_cache, v_cache, cache_len):
        layout = self.model.layout(position.reshape(-1, 1), cache_len)
        logits, k, v = self.model.run(tokens, layout, list(zip(k_cache.unbind(0), v_cache.unbind(0), strict=True)))
        return logits[:, -1], k, v, layout.slots


def write_batch_graph(net: TokenTransformer, path: Path) -> None:
    """`net`'s batched decode graph, written atomically to `path`."""
    net = net.eval()
    cfg, b = net.cfg, 2  # traced at batch 2 so that no batch axis is folded away as a broadcast
    cache = torch.zeros(cfg.layers, b, cfg.heads, cfg.context, cfg.head_dim)
    example = (torch.zeros(b, 1, dtype=torch.long), torch.zeros(b, dtype=torch.long), cache, cache.clone(),
               torch.zeros(b, dtype=torch.long))
    batch, cache_axes = {0: "batch"}, {1: "batch"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        out = Path(tmp) / "batch.onnx"
        torch.onnx.export(BatchDecodeGraph(net), example, str(out), input_names=DECODE_INPUTS,
                          output_names=BATCH_OUTPUTS, opset_version=OPSET, dynamo=False,
                          dynamic_axes={"tokens": batch, "position": batch, "k_cache": cache_axes,
                                        "v_cache": cache_axes, "cache_len": batch, "logits": batch,
                                        "k_new": cache_axes, "v_new": cache_axes, "slots": batch})
        write_atomic(path, out.read_bytes())


def add_batch_graph(manifest_path: Path, tolerance: float = 1e-4) -> Path:
    """Write `<name>.batch.onnx` for the export at `manifest_path` and name it in the manifest; returns its path."""
    manifest_path = Path(manifest_path)
    manifest_path = manifest_path.with_suffix(".json") if manifest_path.suffix == ".onnx" else manifest_path
    manifest = read_manifest(manifest_path)
    if manifest["task"] != "flappy":
        raise UserError(f"{manifest_path} describes a {manifest['task']} export: only Flappy exports have a "
                        f"batched decode graph to add (Breakout's denoiser already takes any batch)")
    folder = manifest_path.parent
    net = net_from_decode_graph(folder / manifest["onnx"], model_config(manifest))
    worst = decode_parity(net, manifest, folder)
    if worst > tolerance:
        raise ExportError(f"the rebuilt model's logits differ from the export's by {worst:.3g} (tolerance "
                          f"{tolerance:g}); nothing was written")
    path = folder / f"{manifest['name']}.batch.onnx"
    write_batch_graph(net, path)
    manifest["batch_onnx"] = path.name
    write_manifest(manifest_path, manifest)
    return path


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.flappy.batch_graph",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a Flappy export's <name>.json (or its .onnx)")
    args = parser.parse_args(argv)
    path = add_batch_graph(args.manifest)
    print(json.dumps({"wrote": str(path), "bytes": path.stat().st_size}))


if __name__ == "__main__":
    main()

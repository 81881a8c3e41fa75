#!/usr/bin/env python3
"""Fuses transformer exports with onnxruntime's transformer optimizer, as a user would before
deploying them, for Shears' fused-op tests (docs/fused.md).

Usage: fuse_transformers.py OUT_DIR MODEL.onnx [MODEL.onnx ...]
Each MODEL is named `<family>-<style>.onnx` (family bert, gpt2, llama or vit: the optimizer's
model type, heads and hidden size come from the table below, the configs of
../shared/models/transformers/README.md). Writes OUT_DIR/<same name> and prints one JSON object
per model: {"model", "fused": {"domain:op": count}} for the ops outside the default ONNX
domain plus the default-domain ops onnxruntime adds (SimplifiedLayerNormalization). Exits 3
if the packages are missing.

opt_level=0: the optimizer's own fusions only. Levels >= 1 also run onnxruntime's graph
optimizer first, which onnxruntime 1.32's Python helper only does with torch installed.
"""
import collections
import json
import os
import sys

try:
    import onnx  # noqa: F401 - the optimizer needs it
    from onnxruntime.transformers.optimizer import optimize_model
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)

# family -> (optimizer model type, attention heads, hidden size). onnxruntime has no Llama
# type; 'gpt2' fuses its RMSNorms and residual adds.
FAMILIES = {
    "bert": ("bert", 4, 64),
    "gpt2": ("gpt2", 4, 64),
    "vit": ("vit", 4, 64),
    "llama": ("gpt2", 4, 64),
}
ONNX_OPS = {"SimplifiedLayerNormalization"}


def main():
    out_dir, models = sys.argv[1], sys.argv[2:]
    for path in models:
        name = os.path.basename(path)
        model_type, heads, hidden = FAMILIES[name.split("-")[0]]
        opt = optimize_model(
            path, model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=0
        )
        opt.save_model_to_file(os.path.join(out_dir, name))
        fused = collections.Counter(
            f"{n.domain}:{n.op_type}"
            for n in opt.model.graph.node
            if n.domain not in ("", "ai.onnx") or n.op_type in ONNX_OPS
        )
        print(json.dumps({"model": name, "fused": dict(sorted(fused.items()))}), flush=True)


if __name__ == "__main__":
    main()

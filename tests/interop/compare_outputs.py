#!/usr/bin/env python3
"""Checks that rewritten models are valid and compute what their originals compute.

Usage: compare_outputs.py ORIGINAL.onnx REWRITTEN.onnx [ORIGINAL REWRITTEN ...]
For each pair: onnx.checker (full_check) on the rewritten model, then both run in onnxruntime on
the same seeded random inputs; the largest output difference relative to the original's largest
magnitude must be <= 1e-5. Prints one JSON object per pair; exits 1 if any pair fails, 3 if the
Python packages are missing.
"""
import json
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def compare(original, rewritten):
    result = {"original": original, "rewritten": rewritten}
    try:
        onnx.checker.check_model(rewritten, full_check=True)
        sess = session(original)
        rng = np.random.default_rng(0)
        feeds = {
            i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(
                np.float32
            )
            for i in sess.get_inputs()
        }
        a = sess.run(None, feeds)
        b = session(rewritten).run(None, feeds)
        rel = 0.0
        for x, y in zip(a, b):
            if x.shape != y.shape:
                raise ValueError(f"output shapes differ: {x.shape} vs {y.shape}")
            scale = max(float(np.abs(x).max()), 1e-30)
            rel = max(rel, float(np.abs(x - y).max()) / scale)
        result["max_rel"] = rel
        result["ok"] = rel <= 1e-5
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    args = sys.argv[1:]
    failed = 0
    for original, rewritten in zip(args[::2], args[1::2]):
        r = compare(original, rewritten)
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

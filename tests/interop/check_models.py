#!/usr/bin/env python3
"""Checks ONNX models with a real client: onnx.checker (full_check) and an onnxruntime run.

Usage: check_models.py MODEL.onnx [MODEL.onnx ...]
Prints one JSON object per model on stdout; exits 1 if any model fails, 3 if the Python
packages are missing (the Rust test turns that into a clear failure, never a silent pass).
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

TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def check(path):
    result = {"model": path}
    try:
        onnx.checker.check_model(path, full_check=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            dtype = TYPES.get(i.type, np.float32)
            if dtype == np.float32 or dtype == np.float64:
                feeds[i.name] = rng.standard_normal(shape).astype(dtype)
            else:
                feeds[i.name] = np.zeros(shape, dtype=dtype)
        outs = sess.run(None, feeds)
        result["outputs"] = [list(o.shape) for o in outs]
        result["finite"] = bool(all(np.isfinite(o).all() for o in outs if o.dtype.kind == "f"))
        result["ok"] = result["finite"]
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    failed = 0
    for path in sys.argv[1:]:
        r = check(path)
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

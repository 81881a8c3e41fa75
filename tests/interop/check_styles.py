#!/usr/bin/env python3
"""Checks pruned models against their originals with a real client.

Usage: check_styles.py ORIGINAL.onnx PRUNED.onnx INPUT.npy [ORIGINAL PRUNED INPUT ...]
For each triple: onnx.checker (full_check) accepts the pruned model; onnxruntime runs both on
the input and the output shapes agree; the pruned model keeps the original's graph inputs (an
initializer listed as an input stays listed) and declares each such input with exactly its
initializer's type and dims. Prints one JSON object per pair; exits 1 if any fails, 3 if the
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


def run(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def run_both(original, pruned, npy, result):
    """Runs both models on the input in `npy`: the pruned outputs must have the original's
    shapes (else AssertionError); records them and whether they are finite (`ok`)."""
    x = np.load(npy)
    ya, yb = run(original, x), run(pruned, x)
    result["outputs"] = [list(o.shape) for o in yb]
    if [o.shape for o in ya] != [o.shape for o in yb]:
        raise AssertionError(f"output shapes {[o.shape for o in ya]} -> {result['outputs']}")
    result["finite"] = bool(all(np.isfinite(o).all() for o in yb))
    result["ok"] = result["finite"]


def declared(vi):
    t = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    return t.elem_type, dims


def check(original, pruned, npy):
    result = {"model": pruned}
    try:
        onnx.checker.check_model(pruned, full_check=True)
        a, b = onnx.load(original), onnx.load(pruned)
        ins_a = [i.name for i in a.graph.input]
        ins_b = [i.name for i in b.graph.input]
        if ins_a != ins_b:
            raise AssertionError(f"graph inputs changed: {ins_a} -> {ins_b}")
        inits = {t.name: t for t in b.graph.initializer}
        listed = [vi for vi in b.graph.input if vi.name in inits]
        result["initializer_inputs"] = len(listed)
        for vi in listed:
            t = inits[vi.name]
            if declared(vi) != (t.data_type, list(t.dims)):
                raise AssertionError(f"input {vi.name} declared {declared(vi)}, holds {list(t.dims)}")
        run_both(original, pruned, npy, result)
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    args = sys.argv[1:]
    if len(args) % 3:
        print("expected ORIGINAL PRUNED INPUT triples", file=sys.stderr)
        sys.exit(2)
    failed = 0
    for i in range(0, len(args), 3):
        r = check(*args[i : i + 3])
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

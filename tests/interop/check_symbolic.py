#!/usr/bin/env python3
"""Checks that pruned models keep their symbolic dimensions and run at several sizes of them.

Usage: check_symbolic.py [--checker-as-original] PRUNED.onnx ORIGINAL.onnx [PRUNED ORIGINAL ...]
For each pair: onnx.checker (full_check) on the pruned model; every dim_param the original
declares on a graph input or output is declared at the same place in the pruned model; both
run in onnxruntime with every symbolic dimension at 1 and at 3, with the same output shapes.
With --checker-as-original, a pruned model failing the checker passes only when the original
fails it too (models onnxruntime's optimizer fused: it writes SimplifiedLayerNormalization in
the default domain, where the onnx package has no schema); the reason is in "checker_skipped".
Prints one JSON object per pair; exits 1 if any pair fails, 3 if the packages are missing.
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

TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def declared(model):
    """(kind, name, axis) -> dim_param of every symbolic graph input/output dimension."""
    out = {}
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for v in values:
            for axis, d in enumerate(v.type.tensor_type.shape.dim):
                if d.HasField("dim_param"):
                    out[(kind, v.name, axis)] = d.dim_param
    return out


def run(path, size):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else size for d in i.shape]
        dtype = TYPES.get(i.type, np.float32)
        if dtype == np.float32:
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[i.name] = np.zeros(shape, dtype=dtype)
    return [list(o.shape) for o in sess.run(None, feeds)]


def check(pruned, original, checker_as_original=False):
    result = {"model": pruned}
    try:
        try:
            onnx.checker.check_model(pruned, full_check=True)
        except onnx.checker.ValidationError as e:
            if not checker_as_original:
                raise
            try:
                onnx.checker.check_model(original, full_check=True)
            except onnx.checker.ValidationError as orig:
                result["checker_skipped"] = f"the original fails it: {str(orig).splitlines()[0]}"
            else:
                raise e
        want, got = declared(onnx.load(original)), declared(onnx.load(pruned))
        result["symbolic"] = sorted(set(want.values()))
        missing = {f"{k[0]} {k[1]}[{k[2]}]": p for k, p in want.items() if got.get(k) != p}
        if not want:
            raise ValueError("the original declares no symbolic dimension")
        if missing:
            raise ValueError(f"symbolic dimensions lost: {missing}")
        for size in (1, 3):
            a, b = run(pruned, size), run(original, size)
            result[f"outputs_at_{size}"] = a
            if a != b:
                raise ValueError(f"at size {size}: output shapes {a}, original {b}")
        result["ok"] = True
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    args = sys.argv[1:]
    as_original = bool(args) and args[0] == "--checker-as-original"
    if as_original:
        args = args[1:]
    failed = 0
    for pruned, original in zip(args[0::2], args[1::2]):
        r = check(pruned, original, as_original)
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The zeroing check against onnxruntime: a `--layer/--idxs` plan is exact when the pruned model
computes what the original computes with every input-channel slice the plan removes set to
zero (parameter entries with role `in`), on the same inputs.

Usage: check_zeroed.py [--size N] ORIGINAL.onnx PRUNED.onnx PLAN.json [ORIGINAL PRUNED PLAN ...]
Symbolic input dimensions are set to N (default 1); float inputs are seeded normal samples,
integer inputs (token ids) seeded 0s and 1s.
Prints one JSON object per triple; exits 1 if any differs by more than 1e-5 relative (or the
plan says its channels are mixed, so no exactness can be claimed), 3 if the Python packages
are missing.
"""
import json
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)

TOLERANCE = 1e-5
INTEGERS = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def feed(i, rng, size):
    shape = [d if isinstance(d, int) else size for d in i.shape]
    if i.type in INTEGERS:
        return rng.integers(0, 2, shape).astype(INTEGERS[i.type])
    return rng.standard_normal(shape).astype(np.float32)


def zeroed(original, plan):
    m = onnx.load(original)
    inits = {t.name: i for i, t in enumerate(m.graph.initializer)}
    for e in plan["entries"]:
        if e["kind"] != "parameter" or e["role"] != "in":
            continue
        t = m.graph.initializer[inits[e["tensor"]]]
        a = numpy_helper.to_array(t).copy()
        index = [slice(None)] * a.ndim
        index[e["axis"]] = e["indices"]
        a[tuple(index)] = 0
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    return m.SerializeToString()


def run(model, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check(original, pruned, plan_path, size):
    result = {"model": pruned}
    try:
        with open(plan_path) as f:
            plan = json.load(f)
        if plan.get("mixed_by"):
            raise ValueError(f"the plan's channels are mixed by {plan['mixed_by']}")
        sess = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {i.name: feed(i, rng, size) for i in sess.get_inputs()}
        want = run(zeroed(original, plan), feeds)
        got = run(pruned, feeds)
        rel = 0.0
        for w, g in zip(want, got):
            if w.shape != g.shape:
                raise ValueError(f"output shape {g.shape} differs from {w.shape}")
            rel = max(rel, float(np.abs(w - g).max() / max(np.abs(w).max(), 1e-12)))
        result["max_rel"] = rel
        result["ok"] = rel <= TOLERANCE
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    args = sys.argv[1:]
    size = 1
    if args[:1] == ["--size"]:
        size, args = int(args[1]), args[2:]
    failed = 0
    for k in range(0, len(args), 3):
        r = check(*args[k : k + 3], size)
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

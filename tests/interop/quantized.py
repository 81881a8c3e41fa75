#!/usr/bin/env python3
"""Quantized models with a real client: onnxruntime.quantization writes them, onnx.checker and
onnxruntime judge what `shears prune` makes of them.

Usage:
  quantized.py make DIR
      Builds a small float CNN with onnx.helper (Conv-Relu-Conv-Relu, a residual Add, global
      pooling, a MatMul head) and writes DIR/float.onnx, DIR/input.npy, and its quantized twins
      from onnxruntime.quantization.quantize_static (per-channel, calibrated on seeded data):
      DIR/qdq.onnx (QuantFormat.QDQ: QuantizeLinear/DequantizeLinear around float ops) and
      DIR/qop.onnx (QuantFormat.QOperator: QLinearConv/QLinearMatMul...).
  quantized.py quantize FLOAT.onnx INPUT.npy OUT.onnx
      quantize_static (QDQ, per-channel) of FLOAT.onnx, calibrated on INPUT.npy.
  quantized.py check ORIGINAL PRUNED INPUT [ORIGINAL PRUNED INPUT ...]
      Per triple: onnx.checker (full_check) accepts PRUNED; onnxruntime runs both on INPUT with
      equal output shapes and finite outputs; PRUNED stays quantized: the same op histogram and
      the same element type for every initializer that keeps its name, and every quantization
      scale and zero point as long as the axis it follows. One JSON object per triple.
  quantized.py compare MODEL_A MODEL_B INPUT TOLERANCE
      Runs both in onnxruntime; prints the largest absolute output difference; exits 1 past
      TOLERANCE (the zeroing check: a pruned model against its original with the pruned input
      channels zeroed).

Exits 1 on a failed check, 3 if the Python packages are missing.
"""
import json
import os
import sys
from collections import Counter

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from check_styles import run_both
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run(path, x):
    sess = session(path)
    return sess.run(None, {sess.get_inputs()[0].name: x})


class Reader(CalibrationDataReader):
    def __init__(self, name, samples):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def quantize(src, dst, x, fmt):
    name = session(src).get_inputs()[0].name
    samples = [x] + [np.random.default_rng(s).standard_normal(x.shape).astype(np.float32) for s in range(4)]
    quantize_static(
        src,
        dst,
        Reader(name, samples),
        quant_format=fmt,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def float_model():
    rng = np.random.default_rng(7)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    inits = [
        w("c1.weight", 8, 3, 3, 3),
        w("c1.bias", 8),
        w("c2.weight", 12, 8, 3, 3),
        w("c2.bias", 12),
        w("c3.weight", 12, 8, 1, 1),
        w("fc.weight", 12, 5),
        w("fc.bias", 5),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "c1.weight", "c1.bias"], ["h1"], name="c1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2.weight", "c2.bias"], ["h2"], name="c2", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["r1", "c3.weight"], ["h3"], name="c3"),
        helper.make_node("Add", ["h2", "h3"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc.weight"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "fc.bias"], ["output"], name="fc_add"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_quantizable",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def make(d):
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, "float.onnx")
    onnx.save(float_model(), f)
    x = np.random.default_rng(0).standard_normal((1, 3, 10, 10)).astype(np.float32)
    np.save(os.path.join(d, "input.npy"), x)
    quantize(f, os.path.join(d, "qdq.onnx"), x, QuantFormat.QDQ)
    quantize(f, os.path.join(d, "qop.onnx"), x, QuantFormat.QOperator)
    for name in ["qdq", "qop"]:
        ops = Counter(n.op_type for n in onnx.load(os.path.join(d, f"{name}.onnx")).graph.node)
        print(json.dumps({"model": name, "ops": dict(sorted(ops.items()))}))


# Input slots of quantization parameters (scale, zero point) and the slot of the tensor they
# quantize, per op; the axis follows from the op.
PARAMS = {
    "QuantizeLinear": [(1, 0), (2, 0)],
    "DequantizeLinear": [(1, 0), (2, 0)],
    "QLinearConv": [(4, 3), (5, 3)],
    "QLinearMatMul": [(4, 3), (5, 3)],
}


def param_axis(node, rank):
    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        return axis % rank
    if node.op_type == "QLinearConv":
        return 0
    return rank - 1  # QLinearMatMul: per column of b


def check_quantized(a, b):
    """PRUNED keeps ORIGINAL's quantization: op histogram, initializer types, parameter sizes."""
    ops_a = Counter(n.op_type for n in a.graph.node)
    ops_b = Counter(n.op_type for n in b.graph.node)
    if ops_a != ops_b:
        raise AssertionError(f"op histogram changed: {dict(ops_a)} -> {dict(ops_b)}")
    types_a = {t.name: t.data_type for t in a.graph.initializer}
    inits_b = {t.name: t for t in b.graph.initializer}
    for name, t in inits_b.items():
        if name in types_a and types_a[name] != t.data_type:
            raise AssertionError(f"initializer {name} changed type {types_a[name]} -> {t.data_type}")
    quantized = sum(t.data_type in (TensorProto.INT8, TensorProto.UINT8) and len(t.dims) >= 2 for t in inits_b.values())
    if quantized == 0:
        raise AssertionError("no int8/uint8 weight left")
    # Every per-axis parameter is as long as the axis of the stored tensor it quantizes.
    checked = 0
    for n in b.graph.node:
        for slot, data in PARAMS.get(n.op_type, []):
            if slot >= len(n.input) or n.input[slot] not in inits_b or n.input[data] not in inits_b:
                continue
            p, t = inits_b[n.input[slot]], inits_b[n.input[data]]
            if len(p.dims) != 1 or p.dims[0] == 1:
                continue
            axis = param_axis(n, len(t.dims))
            if p.dims[0] != t.dims[axis]:
                raise AssertionError(f"{n.name}: {p.name} has {p.dims[0]} values, {t.name} axis {axis} has {t.dims[axis]}")
            checked += 1
    return quantized, checked


def check(original, pruned, npy):
    result = {"model": pruned}
    try:
        onnx.checker.check_model(pruned, full_check=True)
        a, b = onnx.load(original), onnx.load(pruned)
        result["quantized_weights"], result["per_channel_params"] = check_quantized(a, b)
        run_both(original, pruned, npy, result)
    except Exception as e:  # noqa: BLE001 - every failure is reported, with its cause
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make" and len(args) == 1:
        make(args[0])
    elif cmd == "quantize" and len(args) == 3:
        src, npy, dst = args
        quantize(src, dst, np.load(npy), QuantFormat.QDQ)
        onnx.checker.check_model(dst, full_check=True)
        y = run(dst, np.load(npy))
        print(json.dumps({"model": dst, "outputs": [list(o.shape) for o in y]}))
    elif cmd == "check" and args and len(args) % 3 == 0:
        failed = 0
        for i in range(0, len(args), 3):
            r = check(*args[i : i + 3])
            failed += not r["ok"]
            print(json.dumps(r), flush=True)
        sys.exit(1 if failed else 0)
    elif cmd == "compare" and len(args) == 4:
        a, b, npy, tol = args
        x = np.load(npy)
        ya, yb = run(a, x), run(b, x)
        diff = max(float(np.abs(p.astype(np.float64) - q.astype(np.float64)).max()) for p, q in zip(ya, yb))
        print(json.dumps({"max_abs": diff}))
        sys.exit(0 if diff <= float(tol) else 1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds small models whose channels cross computed weights and rarer ops, as other exporters
write them (onnx.helper, no torch): weight standardisation (BiT / timm `StdConv2d`, the
`var_mean` form and the batch-norm-over-a-reshape form), weight standardisation through a
2-D Reshape and back, a bias made by `ConstantOfShape`, a bias broadcast by `Expand`, a
`GatherND` with constant indices, and a Reshape that folds the channel with a patch axis and
back (`[C, p*p] -> [C*p, p]`).

Usage: computed_models.py OUT_DIR
Writes one `<name>.onnx` per model into OUT_DIR and prints the names, one a line.
Exits 3 when the Python packages are missing.
"""
import os
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx numpy)", file=sys.stderr)
    sys.exit(3)

OPSET = 17


def weights(name, shape, seed):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def floats(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def model(name, nodes, inits, x_shape, y_shape):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def std_weight(p, w):
    """BiT's `StdConv2d`: `(w - mean(w)) / sqrt(var(w) + eps)` over every axis but the first."""
    return [
        helper.make_node("ReduceMean", [w], [f"{p}_m"], axes=[1, 2, 3], keepdims=1, name=f"{p}_mean"),
        helper.make_node("Sub", [w, f"{p}_m"], [f"{p}_c"], name=f"{p}_sub"),
        helper.make_node("Mul", [f"{p}_c", f"{p}_c"], [f"{p}_sq"], name=f"{p}_sq"),
        helper.make_node("ReduceMean", [f"{p}_sq"], [f"{p}_v"], axes=[1, 2, 3], keepdims=1, name=f"{p}_var"),
        helper.make_node("Add", [f"{p}_v", "eps"], [f"{p}_ve"], name=f"{p}_add"),
        helper.make_node("Sqrt", [f"{p}_ve"], [f"{p}_sd"], name=f"{p}_sqrt"),
        helper.make_node("Div", [f"{p}_c", f"{p}_sd"], [f"{w}_ws"], name=f"{p}_div"),
    ]


def two_convs(name, standardise, c_mid=8):
    """x[1,3,8,8] -> conv1 (computed weight) -> Relu -> conv2 -> y: conv1's output channels are
    the prunable group, its weight reaching the Conv through `standardise`."""
    nodes, inits = standardise("w1")
    nodes += [
        helper.make_node("Conv", ["x", "w1_ws", "b1"], ["h"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
    ]
    inits += [
        weights("w1", [c_mid, 3, 3, 3], 1),
        weights("b1", [c_mid], 2),
        weights("w2", [4, c_mid, 1, 1], 3),
        floats("eps", [1e-5]),
    ]
    return model(name, nodes, inits, [1, 3, 8, 8], [1, 4, 8, 8])


def std_conv():
    return two_convs("std_conv", lambda w: (std_weight("s", w), []))


def std_conv_bn():
    """timm's `StdConv2d`: `batch_norm(w.reshape(1, C, -1), training=True).reshape_as(w)`, as
    the exporter writes a training-mode batch norm without running statistics: the mean and
    variance over the reshaped weight's last axis feed a BatchNormalization with unit scale."""

    def standardise(w):
        nodes = [
            helper.make_node("Reshape", [w, "bn_shape"], ["s_r"], name="s_reshape"),
            helper.make_node("ReduceMean", ["s_r"], ["s_m3"], axes=[2], keepdims=1, name="s_mean"),
            helper.make_node("Sub", ["s_r", "s_m3"], ["s_c"], name="s_sub"),
            helper.make_node("Mul", ["s_c", "s_c"], ["s_sq"], name="s_sq"),
            helper.make_node("ReduceMean", ["s_sq"], ["s_v3"], axes=[0, 2], keepdims=0, name="s_var"),
            helper.make_node("ReduceMean", ["s_r"], ["s_m"], axes=[0, 2], keepdims=0, name="s_mean1"),
            helper.make_node(
                "BatchNormalization",
                ["s_r", "s_one", "s_zero", "s_m", "s_v3"],
                ["s_n"],
                epsilon=1e-5,
                name="s_bn",
            ),
            helper.make_node("Reshape", ["s_n", "w_shape"], ["w1_ws"], name="s_unreshape"),
        ]
        inits = [
            ints("bn_shape", [1, 8, -1]),
            ints("w_shape", [8, 3, 3, 3]),
            floats("s_one", [1.0] * 8),
            floats("s_zero", [0.0] * 8),
        ]
        return nodes, inits

    return two_convs("std_conv_bn", standardise)


def std_conv_2d():
    """Weight standardisation through a 2-D view: `w.reshape(C, -1)` normalised over axis 1, then
    reshaped back to `w`'s shape."""

    def standardise(w):
        nodes = [
            helper.make_node("Reshape", [w, "flat_shape"], ["s_r"], name="s_reshape"),
            helper.make_node("ReduceMean", ["s_r"], ["s_m"], axes=[1], keepdims=1, name="s_mean"),
            helper.make_node("Sub", ["s_r", "s_m"], ["s_c"], name="s_sub"),
            helper.make_node("Pow", ["s_c", "two"], ["s_sq"], name="s_pow"),
            helper.make_node("ReduceMean", ["s_sq"], ["s_v"], axes=[1], keepdims=1, name="s_var"),
            helper.make_node("Add", ["s_v", "eps"], ["s_ve"], name="s_add"),
            helper.make_node("Sqrt", ["s_ve"], ["s_sd"], name="s_sqrt"),
            helper.make_node("Div", ["s_c", "s_sd"], ["s_n"], name="s_div"),
            helper.make_node("Reshape", ["s_n", "w_shape"], ["w1_ws"], name="s_unreshape"),
        ]
        inits = [ints("flat_shape", [8, -1]), ints("w_shape", [8, 3, 3, 3]), floats("two", [2.0])]
        return nodes, inits

    return two_convs("std_conv_2d", standardise)


def const_bias():
    """A conv bias made in the graph: `ConstantOfShape([C])` filled with 0.5, then a learned
    per-channel scale `Mul`'d in, and a second bias `Expand`ed from a scalar."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h0"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node(
            "ConstantOfShape",
            ["bias_shape"],
            ["cb"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5]),
            name="bias_fill",
        ),
        helper.make_node("Mul", ["cb", "gain"], ["cb_g"], name="bias_gain"),
        helper.make_node("Reshape", ["cb_g", "bias_view"], ["cb_v"], name="bias_view"),
        helper.make_node("Add", ["h0", "cb_v"], ["h1"], name="bias_add"),
        helper.make_node("Expand", ["half", "bias_view"], ["eb"], name="bias_expand"),
        helper.make_node("Add", ["h1", "eb"], ["h"], name="bias_add2"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
    ]
    inits = [
        weights("w1", [8, 3, 3, 3], 1),
        ints("bias_shape", [8]),
        weights("gain", [8], 4),
        ints("bias_view", [1, 8, 1, 1]),
        floats("half", [0.25]),
        weights("w2", [4, 8, 1, 1], 3),
    ]
    return model("const_bias", nodes, inits, [1, 3, 8, 8], [1, 4, 8, 8])


def gather_nd():
    """`GatherND` with constant indices picking rows of a token sequence `[1, T, C]` by
    (batch, token) pairs: the hidden axis passes through, so fc1's outputs stay prunable."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("GatherND", ["r", "idx"], ["g"], batch_dims=0, name="pick"),
        helper.make_node("MatMul", ["g", "w2"], ["y"], name="fc2"),
    ]
    inits = [
        weights("w1", [6, 8], 1),
        numpy_helper.from_array(np.array([[[0, 3], [0, 1]]], dtype=np.int64), "idx"),
        weights("w2", [8, 4], 3),
    ]
    return model("gather_nd", nodes, inits, [1, 5, 6], [1, 2, 4])


def regroup():
    """A Reshape that folds the channel with a patch axis and back around a per-position
    linear map: `[1, C, p*p] -> [1, C*p, p]`, a MatMul over the last axis, then back (1-D
    convs on either side)."""
    c, p = 8, 4
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], name="conv1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "fold"], ["f"], name="fold"),
        helper.make_node("MatMul", ["f", "wp"], ["fp"], name="patch_mix"),
        helper.make_node("Reshape", ["fp", "unfold"], ["u"], name="unfold"),
        helper.make_node("Conv", ["u", "w2"], ["y"], name="conv2"),
    ]
    inits = [
        weights("w1", [c, 3, 1], 1),
        ints("fold", [1, c * p, p]),
        weights("wp", [p, p], 2),
        ints("unfold", [1, c, p * p]),
        weights("w2", [4, c, 1], 3),
    ]
    return model("regroup", nodes, inits, [1, 3, p * p], [1, 4, p * p])


MODELS = [std_conv, std_conv_bn, std_conv_2d, const_bias, gather_nd, regroup]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for build in MODELS:
        m = build()
        onnx.save(m, os.path.join(out, f"{build.__name__}.onnx"))
        print(build.__name__)


if __name__ == "__main__":
    main()

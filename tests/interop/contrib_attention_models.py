#!/usr/bin/env python3
"""Writes models with onnxruntime's com.microsoft MultiHeadAttention, GroupQueryAttention and
RotaryEmbedding (docs/fused.md), as its optimizer writes them on LLM exports, each between an
input projection and a residual block; checks each against a NumPy reference of the op's
semantics in onnxruntime.

Usage: contrib_attention_models.py OUTDIR [--seq N]
Writes OUTDIR/{mha,gqa,rotary}.onnx, with a symbolic sequence axis `seq` (checked at lengths
1 and 5) or, with --seq, a fixed one (at most 8); prints one JSON line per model: {"model":
path}, and with --seq the input, mask and onnxruntime's output it checked, flattened. Inputs: `input[1, seq, 8]`
(float) and, for mha, `mask[1, seq]` (int32).
- mha: `q, k, v = r·wq, r·wk, r·wv` (v 12 wide), MultiHeadAttention(4 heads, mask,
  unidirectional), `·wo + r`, `·wc`.
- gqa: 4 query heads of 16 over 2 key/value heads, do_rotary with cos/sin caches; seqlens_k and
  total_sequence_length computed from the input's shape (the prefill form).
- rotary: RotaryEmbedding (4 heads of 4, position_ids `[1]` = 0) on q and (interleaved) on k,
  then MultiHeadAttention.
Exits 1 if onnxruntime differs from the reference, 3 if the packages are missing.
"""
import json
import os
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)

MS = "com.microsoft"


def caches(positions, half):
    angle = np.arange(positions)[:, None] * (1.0 / 10000 ** (np.arange(half) / half))[None, :]
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def rope(x, cos, sin, interleaved=False):
    """x [B, H, S, d] with its first 2·w positions rotated by cos/sin rows [S, w]: pairs
    (j, j + w), or (2j, 2j + 1) when interleaved."""
    h = cos.shape[1]
    if interleaved:
        out = x.copy()
        a, b = x[..., 0:2 * h:2], x[..., 1:2 * h:2]
        out[..., 0:2 * h:2], out[..., 1:2 * h:2] = a * cos - b * sin, a * sin + b * cos
        return out
    x1, x2 = x[..., :h], x[..., h:2 * h]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos, x[..., 2 * h:]], -1)


def attend(q, k, v, add):
    """softmax(q·kᵀ/sqrt(d) + add)·v with [B, H, S, d] heads, concatenated to [B, S, H·dv]."""
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + add
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = p @ v
    return o.transpose(0, 2, 1, 3).reshape(o.shape[0], o.shape[2], -1)


def heads(x, n):
    b, s, w = x.shape
    return x.reshape(b, s, n, w // n).transpose(0, 2, 1, 3)


def causal(s):
    return np.triu(np.full((s, s), np.finfo(np.float32).min, np.float32), 1)


class Model:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.w = {}

    def weight(self, name, *dims):
        self.w[name] = (self.rng.standard_normal(dims) * 0.3).astype(np.float32)
        return name


def save(nodes, inits, name, seq, outdir, extra_inputs=()):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, seq, 8]), *extra_inputs],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, seq, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(outdir, f"{name}.onnx")
    onnx.save(model, path)
    return path


def tail(m, a, width, hidden):
    """`a·wo + r`, then `·wc`: the residual block after the attention."""
    m.weight("wo", width, hidden)
    m.weight("wc", hidden, 4)
    return [
        helper.make_node("MatMul", [a, "wo"], ["o"], name="out_proj"),
        helper.make_node("Add", ["o", "r"], ["s"], name="residual"),
        helper.make_node("MatMul", ["s", "wc"], ["output"], name="head"),
    ]


def projections(m, hidden, widths):
    nodes = [helper.make_node("MatMul", ["input", m.weight("w0", 8, hidden)], ["r"], name="proj")]
    for t, w in zip("qkv", widths):
        nodes.append(helper.make_node("MatMul", ["r", m.weight(f"w{t}", hidden, w)], [t], name=f"{t}_proj"))
    return nodes


def mha(seq, outdir):
    m = Model(1)
    nodes = projections(m, 16, (16, 16, 12))
    nodes.append(helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "mask"], ["a"],
                                  name="mha", domain=MS, num_heads=4, unidirectional=1))
    nodes += tail(m, "a", 12, 16)
    mask = helper.make_tensor_value_info("mask", TensorProto.INT32, [1, seq])
    path = save(nodes, [numpy_helper.from_array(v, k) for k, v in m.w.items()], "mha", seq, outdir, [mask])

    def reference(x, mk):
        r = x @ m.w["w0"]
        q, k, v = (heads(r @ m.w[f"w{t}"], 4) for t in "qkv")
        s = x.shape[1]
        # -10000 at the mask's zeros; the lowest float at later positions, whatever the mask.
        add = np.where(mk[0] == 0, np.float32(-10000), np.float32(0))[None, :]
        add = np.where(causal(s) < 0, causal(s), add)
        a = attend(q, k, v, add)
        return ((a @ m.w["wo"]) + r) @ m.w["wc"]

    return path, reference


def gqa(seq, outdir):
    m = Model(2)
    nodes = projections(m, 32, (64, 32, 32))
    cos, sin = caches(32, 8)
    shape = [
        helper.make_node("Shape", ["input"], ["shape"], start=1, end=2, name="seq_len"),
        helper.make_node("Cast", ["shape"], ["len32"], to=TensorProto.INT32, name="len32"),
        helper.make_node("Sub", ["len32", "one"], ["seqlens_k"], name="seqlens_k"),
        helper.make_node("Squeeze", ["len32"], ["total"], name="total"),
    ]
    nodes += shape
    nodes.append(helper.make_node("GroupQueryAttention",
                                  ["q", "k", "v", "", "", "seqlens_k", "total", "cos", "sin"],
                                  ["a", "present_key", "present_value"], name="gqa", domain=MS,
                                  num_heads=4, kv_num_heads=2, do_rotary=1))
    nodes += tail(m, "a", 64, 32)
    inits = [numpy_helper.from_array(v, k) for k, v in m.w.items()]
    inits += [numpy_helper.from_array(cos, "cos"), numpy_helper.from_array(sin, "sin"),
              numpy_helper.from_array(np.array([1], np.int32), "one")]
    path = save(nodes, inits, "gqa", seq, outdir)

    def reference(x, _):
        r = x @ m.w["w0"]
        s = x.shape[1]
        q = rope(heads(r @ m.w["wq"], 4), cos[:s], sin[:s])
        k = np.repeat(rope(heads(r @ m.w["wk"], 2), cos[:s], sin[:s]), 2, axis=1)
        v = np.repeat(heads(r @ m.w["wv"], 2), 2, axis=1)
        a = attend(q, k, v, causal(s))
        return ((a @ m.w["wo"]) + r) @ m.w["wc"]

    return path, reference


def rotary(seq, outdir):
    m = Model(3)
    nodes = projections(m, 16, (16, 16, 16))
    cos, sin = caches(32, 2)
    # q's rotation pairs (j, j + 2); k's, interleaved, (2j, 2j + 1).
    for t, interleaved in (("q", 0), ("k", 1)):
        nodes.append(helper.make_node("RotaryEmbedding", [t, "pos", "cos", "sin"], [f"{t}_rot"],
                                      name=f"{t}_rotary", domain=MS, num_heads=4,
                                      interleaved=interleaved))
    nodes.append(helper.make_node("MultiHeadAttention", ["q_rot", "k_rot", "v"], ["a"], name="mha",
                                  domain=MS, num_heads=4))
    nodes += tail(m, "a", 16, 16)
    inits = [numpy_helper.from_array(v, k) for k, v in m.w.items()]
    inits += [numpy_helper.from_array(cos, "cos"), numpy_helper.from_array(sin, "sin"),
              numpy_helper.from_array(np.array([0], np.int64), "pos")]
    path = save(nodes, inits, "rotary", seq, outdir)

    def reference(x, _):
        r = x @ m.w["w0"]
        s = x.shape[1]
        q, k = (rope(heads(r @ m.w[f"w{t}"], 4), cos[:s], sin[:s], t == "k") for t in "qk")
        a = attend(q, k, heads(r @ m.w["wv"], 4), np.zeros((s, s), np.float32))
        return ((a @ m.w["wo"]) + r) @ m.w["wc"]

    return path, reference


def main():
    args = sys.argv[1:]
    outdir = args[0]
    seq = int(args[args.index("--seq") + 1]) if "--seq" in args else "seq"
    failed = False
    for make in (mha, gqa, rotary):
        path, reference = make(seq, outdir)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        record = {"model": path}
        for s in (1, 5) if seq == "seq" else (seq,):
            x = rng.standard_normal((1, s, 8)).astype(np.float32)
            mask = np.array([[0, 1, 0, 1, 1, 1, 0, 1][:s]], np.int32)
            feed = {"input": x}
            if any(i.name == "mask" for i in sess.get_inputs()):
                feed["mask"] = mask
            got = sess.run(None, feed)[0]
            want = reference(x, mask)
            err = float(np.abs(got - want).max() / max(1e-6, np.abs(want).max()))
            if err > 1e-5:
                print(f"{path} at sequence {s}: onnxruntime differs from the reference by {err}", file=sys.stderr)
                failed = True
            if seq != "seq":
                record.update(input=x.ravel().tolist(), mask=mask.ravel().tolist(),
                              output=got.ravel().tolist())
        print(json.dumps(record), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

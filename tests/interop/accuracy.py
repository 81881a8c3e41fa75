#!/usr/bin/env python3
"""Top-1 and top-5 accuracy of a model in onnxruntime, for comparison with `shears eval`.

Usage: accuracy.py MODEL.onnx X.npy Y.npy
X holds the samples stacked on axis 0, Y one integer label per sample. The model's first input
is fed in batches of its static batch size (the last padded by repeating a sample, the padding's
results dropped), or all at once when the batch is symbolic. Ranks break ties toward the lower
class (numpy's stable argsort), as `shears eval` does. Prints one JSON object; exits 3 if the
Python packages are missing.
"""
import json
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)


def main():
    model, xs, ys = sys.argv[1:4]
    x = np.load(xs)
    y = np.load(ys).reshape(-1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else len(x)
    scores = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        rows = len(chunk)
        if rows < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - rows, axis=0)])
        out = sess.run(None, {inp.name: chunk})[0]
        scores.append(out.reshape(batch, -1)[:rows])
    scores = np.concatenate(scores).astype(np.float32)
    ranks = [int(np.where(np.argsort(-s, kind="stable") == label)[0][0]) for s, label in zip(scores, y)]
    print(json.dumps({
        "samples": len(y),
        "top1_correct": sum(r < 1 for r in ranks),
        "top5_correct": sum(r < 5 for r in ranks),
    }))


if __name__ == "__main__":
    main()

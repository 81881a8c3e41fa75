#!/usr/bin/env python3
"""check_symbolic.py for models onnxruntime's optimizer fused (docs/fused.md).

Usage: check_fused.py PRUNED.onnx ORIGINAL.onnx [PRUNED.onnx ORIGINAL.onnx ...]
The same checks as check_symbolic.py (onnx.checker full_check on the pruned model, symbolic
dimensions kept, both run in onnxruntime at sizes 1 and 3 with equal output shapes), except
that the checker is skipped, with the reason in "checker_skipped", when the *original* fails it
too: onnxruntime registers SimplifiedLayerNormalization in the default domain, where the onnx
package has no schema for it, so no model holding one passes the checker. Exits 1 if any pair
fails, 3 if the packages are missing.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import onnx
    from check_symbolic import declared, run
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)


def check(pruned, original):
    result = {"model": pruned}
    try:
        try:
            onnx.checker.check_model(original, full_check=True)
            onnx.checker.check_model(pruned, full_check=True)
        except onnx.checker.ValidationError as e:
            try:
                onnx.checker.check_model(original, full_check=True)
            except onnx.checker.ValidationError as orig:
                result["checker_skipped"] = f"the original fails it: {str(orig).splitlines()[0]}"
            else:
                raise e
        want, got = declared(onnx.load(original)), declared(onnx.load(pruned))
        if not want:
            raise ValueError("the original declares no symbolic dimension")
        missing = {f"{k[0]} {k[1]}[{k[2]}]": p for k, p in want.items() if got.get(k) != p}
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
    failed = 0
    for pruned, original in zip(args[0::2], args[1::2]):
        r = check(pruned, original)
        failed += not r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""Compare two output roots: the same tables, arrays and manifests (storage/compare.py).

Usage: .venv/bin/python bench/compare_outputs.py OUT_A OUT_B [--ignore-manifest FIELD ...]

Prints what was compared and every difference; exits 1 when the outputs differ. Used to check that a change of
code that must not change results (a reorganisation, a speed-up) writes the same data as before: run the same
configuration on the same corpus with both versions, then compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matchflow.storage.compare import compare_outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--ignore-manifest", nargs="*", default=[], metavar="FIELD",
                    help="manifest fields to leave out besides those of the run itself (run id, times, workers)")
    args = ap.parse_args()
    parts = sorted(args.a.glob("tables/**/*.parquet"))
    arrays = [p for z in args.a.glob("arrays/*.zarr") for p in z.glob("*/*/zarr.json")]
    print(f"{len(parts)} Parquet files, {len(arrays)} Zarr arrays, "
          f"{len(list(args.a.glob('manifests/*.json')))} manifests in {args.a}")
    diffs = compare_outputs(args.a, args.b, frozenset(args.ignore_manifest))
    for d in diffs:
        print("DIFFERS", d)
    print("identical" if not diffs else f"{len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

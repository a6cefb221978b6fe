"""Why ForceModel scatters -g and not index_add(..., alpha=-1): torch's CPU index_add by alpha.

    python benchmarks/bench_index_add.py [--out benchmarks/results/index_add_alpha.json]

ForceModel sums forces as F.index_add(0, centre, g).index_add(0, neighbour, -g). Written with
alpha=-1 instead (no negated copy of g), torch 2.13's CPU kernel takes a slower path for any
alpha other than 1; on the LJ deck's graph (864 fcc Ar atoms + ghosts, 67k edges, float64) the
two force scatters were a third of the model call. This times, 1 thread, on (E,3) sources of
the sizes pair_style gnnff meets: index_add with alpha=1, with alpha=-1, and with a negated
copy (what ForceModel does now), median of --repeats calls each, and checks that -g and
alpha=-1 give the same bits.
"""

import argparse
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ab import write_json  # noqa: E402

SIZES = [(3429, 67392), (8000, 155000), (1963, 14336)]  # (nodes, edges): LJ, LJ np 1, allegro


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for dtype in (torch.float64, torch.float32):
        for nodes, edges in SIZES:
            gen = torch.Generator().manual_seed(0)
            g = torch.randn(edges, 3, dtype=dtype, generator=gen)
            index = torch.randint(0, nodes, (edges,), generator=gen)
            zeros = torch.zeros(nodes, 3, dtype=dtype)
            row = {
                "dtype": str(dtype).replace("torch.", ""),
                "nodes": nodes,
                "edges": edges,
                "alpha_1_ms": median_ms(lambda: zeros.index_add(0, index, g), args.repeats),
                "alpha_minus_1_ms": median_ms(
                    lambda: zeros.index_add(0, index, g, alpha=-1), args.repeats
                ),
                "negated_copy_ms": median_ms(lambda: zeros.index_add(0, index, -g), args.repeats),
                "same_bits": bool(
                    torch.equal(
                        zeros.index_add(0, index, g, alpha=-1), zeros.index_add(0, index, -g)
                    )
                ),
            }
            row["alpha_minus_1_over_negated_copy"] = (
                row["alpha_minus_1_ms"] / row["negated_copy_ms"]
            )
            rows.append(row)
            print(
                f"{row['dtype']:8s} E={edges:6d}: alpha 1 {row['alpha_1_ms']:.3f} ms, alpha -1 "
                f"{row['alpha_minus_1_ms']:.3f} ms, -g {row['negated_copy_ms']:.3f} ms "
                f"({row['alpha_minus_1_over_negated_copy']:.1f}x), same bits {row['same_bits']}"
            )
    report = {
        "benchmark": "torch CPU index_add by alpha, (E,3) sources",
        "rows": rows,
        "command": " ".join(["python"] + sys.argv),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "load_average": list(os.getloadavg()),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.out:
        write_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of each extra committee member of pair_style gnnff as a fraction of one MD step.

    python benchmarks/bench_committee.py [--cells 6] [--steps 50] [--repeats 3] [--out FILE]

The same deck (diamond Si, NVE, 1 rank) runs with ``pair_style gnnff`` driven by the
Stillinger-Weber model exported through gnnff, with 0, 1 and 2 extra committee members (copies
of the same file, evaluated on every step: no ``model_devi`` interval), best of ``--repeats``
loop times each. Cost of one member = (loop time with k members - without) / k / steps; with
``model_devi FILE N`` the members run every N-th step only, so the cost divides by N.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

from bench_watch import deck, export_sw_model, loop_time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=6, help="diamond cells per side (8 atoms)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/committee.json")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench_committee_")
    model = export_sw_model(os.path.join(work, "sw.pt"))
    members = []
    for k in range(2):
        members.append(os.path.join(work, f"member{k}.pt"))
        shutil.copy(model, members[-1])
    loops = {}
    for n_extra in range(3):
        committee = f" committee {' '.join(members[:n_extra])}" if n_extra else ""
        pair = f"pair_style gnnff{committee}\npair_coeff * * {model} Si"
        text = deck(args.cells, args.steps, pair, "")
        loops[n_extra] = min(loop_time(work, text) for _ in range(args.repeats))
    step = loops[0] / args.steps
    results = []
    for n_extra in (1, 2):
        member = (loops[n_extra] - loops[0]) / n_extra / args.steps
        results.append(
            {
                "extra_members": n_extra,
                "atoms": 8 * args.cells**3,
                "steps": args.steps,
                "step_s": step,
                "step_with_committee_s": loops[n_extra] / args.steps,
                "per_member_s": member,
                "per_member_fraction_of_step": member / step,
            }
        )
        print(
            f"{n_extra} extra member(s): step {step * 1e3:.2f} -> "
            f"{loops[n_extra] / args.steps * 1e3:.2f} ms, {100 * member / step:.1f} % per member"
        )
    out = {
        "benchmark": "pair_style gnnff committee: cost of each extra member (members every step)",
        "machine": os.environ.get("GNNFF_BENCH_MACHINE", "2-core machine; load not controlled"),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python benchmarks/bench_committee.py "
        f"--cells {args.cells} --steps {args.steps} --repeats {args.repeats}",
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()

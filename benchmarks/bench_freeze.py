"""torch.jit.freeze / optimize_for_inference on exported gnnff models: CPU time per call, A/B.

    python benchmarks/bench_freeze.py [--models lj allegro nequip] [--rounds 3] [--reps 3]
                                      [--out benchmarks/results/freeze.json]

Issue 13 suggests freezing the TorchScript module in the C++ loader (pair_allegro does). This
measures what that would buy, in Python (the same TorchScript passes the C++ API runs):
the scripted ForceModel vs ``torch.jit.freeze`` vs ``torch.jit.optimize_for_inference(freeze)``
on a LAMMPS-like graph (local atoms plus periodic-image ghosts, no edge shifts, num_local set):
``lj``: 864 atoms of fcc Ar, LJ 8.5 Å, float64; ``allegro``/``nequip``: 512 atoms of rattled
diamond Si, issue-13 size (r_max 5 Å, 2 layers, l_max 1), float32, ghost centres for nequip.
Variants are interleaved within each round; per variant the best CPU time (process time, 1
thread) over --reps calls after 3 warm-up calls, and the largest force difference to the
scripted model relative to the largest force.
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

from gnnff.models.registry import build_model

OPTIONS = {
    "allegro": dict(n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False),
    "nequip": dict(n_layers=2, l_max=1, num_features=32, parity=False),
    # pair_mlp with its default options (seed 0), as in the thin-framework benchmark; its r_max
    # is 4 Å (the graph's cutoff below follows it)
    "pair_mlp": dict(),
}


def crystal_graph(basis, a, n, cutoff, reach, all_centres, rattle, dtype):
    cells = torch.stack(torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    local = (cells.double()[:, None, :] + basis[None]).reshape(-1, 3) * a
    torch.manual_seed(1)
    local = local + rattle * torch.randn_like(local)
    length = n * a
    shifts = [
        torch.tensor([i, j, k], dtype=torch.float64) * length
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
        for k in (-1, 0, 1)
        if (i, j, k) != (0, 0, 0)
    ]
    ghosts = torch.cat([local + s for s in shifts])
    ghosts = ghosts[((ghosts > -reach) & (ghosts < length + reach)).all(1)]
    pos = torch.cat([local, ghosts])
    centres = pos.shape[0] if all_centres else local.shape[0]
    dist = torch.cdist(pos[:centres], pos, compute_mode="donot_use_mm_for_euclid_dist")
    i, j = torch.nonzero((dist < cutoff) & (dist > 0.1), as_tuple=True)
    return {
        "pos": pos.to(dtype),
        "atom_type": torch.zeros(pos.shape[0], dtype=torch.long),
        "edge_index": torch.stack([i, j]).contiguous(),
        "num_local": torch.tensor([local.shape[0]]),
    }


def setup(name):
    fcc = torch.tensor([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).double()
    if name == "lj":
        model = build_model(
            "lennard_jones", type_names=["Ar"], epsilon=0.0104, sigma=3.4, cutoff=8.5
        )
        return model, crystal_graph(fcc, 5.26, 6, 8.5, 9.5, False, 0.0, torch.float64)
    torch.manual_seed(0)
    r_max = 4.0 if name == "pair_mlp" else 5.0
    model = build_model(name, type_names=["Si"], r_max=r_max, **OPTIONS[name]).float()
    diamond = torch.cat([fcc, fcc + 0.25])
    return model, crystal_graph(
        diamond,
        5.431,
        4,
        r_max,
        11.0 if name == "nequip" else r_max + 1.0,
        name == "nequip",
        0.05,
        torch.float32,
    )


def cpu_per_call(module, data, reps):
    for _ in range(3):
        module(dict(data))
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        module(dict(data))
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lj", "allegro", "nequip"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.models:
        model, data = setup(name)
        scripted = torch.jit.script(model.eval())
        variants = {
            "scripted": scripted,
            "frozen": torch.jit.freeze(torch.jit.script(model.eval())),
            "frozen+optimize_for_inference": torch.jit.optimize_for_inference(
                torch.jit.freeze(torch.jit.script(model.eval()))
            ),
        }
        reference = scripted(dict(data))["forces"].detach()
        scale = reference.abs().max().item()
        for round_ in range(args.rounds):
            for variant, module in variants.items():
                seconds = cpu_per_call(module, data, args.reps)
                forces = module(dict(data))["forces"].detach()
                row = dict(
                    model=name,
                    variant=variant,
                    round=round_,
                    nodes=int(data["pos"].shape[0]),
                    edges=int(data["edge_index"].shape[1]),
                    cpu_ms_per_call=1e3 * seconds,
                    max_force_difference_relative=(forces - reference).abs().max().item() / scale,
                    load_average=os.getloadavg()[0],
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        report = dict(
            benchmark="bench_freeze",
            command=" ".join([os.path.basename(sys.executable)] + sys.argv),
            date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            machine=dict(cpu_count=os.cpu_count(), platform=platform.platform()),
            torch=torch.__version__,
            results=rows,
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

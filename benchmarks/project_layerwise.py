"""Paper projection of `comm layer` vs `comm shell` to 64, 512 and 4096 ranks (not a test).

Model (stated in docs/pair_style.md):
* silicon, 0.0499 atoms/Å^3; a fixed system of 10^6 atoms (strong scaling, cube of side A) cut
  into P cubic subdomains of side s = A / P^(1/3);
* ghosts of a subdomain: atoms in a shell of thickness g around it, (s + 2g)^3 - s^3 volumes,
  g = L r_max + skin for `shell`, r_max + skin for `layer` (L = 3, r_max = 5 Å, skin = 2 Å);
* compute: `shell` evaluates all L layers on local + ghost atoms, `layer` on local atoms only;
  time per step = c_atom * atoms computed, c_atom = the measured model time per computed atom
  and step on one rank (benchmarks/results/layerwise.json, loaded 2-core CPU machine);
* communication of `layer`: 2 L exchanges per step (one forward per layer, one reverse), each
  6 messages (LAMMPS brick: one per face direction, ghosts up to one subdomain deep), bytes = 8
  D N_ghost (D = 32 feature doubles); time = 6 * 2L * alpha + 2L * 8 D N_ghost / bandwidth
  with alpha = 2 µs latency and bandwidth = 10 GB/s (an InfiniBand-class network). `shell`
  moves positions only (the usual LAMMPS ghost update, not counted for either).

    python benchmarks/project_layerwise.py [--results benchmarks/results/layerwise.json]
"""

import argparse
import json

DENSITY = 0.0499  # atoms / Å^3, diamond Si
N_ATOMS = 1_000_000
L, R_MAX, SKIN, D = 3, 5.0, 2.0, 32
ALPHA, BANDWIDTH = 2e-6, 10e9  # s, bytes/s


def ghosts_per_local(side: float, shell: float) -> float:
    return ((side + 2 * shell) ** 3 - side**3) / side**3


def project(c_atom_layer: float, c_atom_shell: float):
    box = (N_ATOMS / DENSITY) ** (1 / 3)
    rows = []
    for ranks in (64, 512, 4096):
        side = box / ranks ** (1 / 3)
        local = N_ATOMS / ranks
        row = {"ranks": ranks, "subdomain_side_A": side, "local_atoms_per_rank": local}
        for comm, shell in (("layer", R_MAX + SKIN), ("shell", L * R_MAX + SKIN)):
            ratio = ghosts_per_local(side, shell)
            if comm == "layer":
                compute = c_atom_layer * local
                communication = 6 * 2 * L * ALPHA + 2 * L * 8 * D * ratio * local / BANDWIDTH
            else:
                compute = c_atom_shell * local * (1 + ratio)
                communication = 0.0
            row[comm] = {
                "ghost_per_local": ratio,
                "compute_s_per_step": compute,
                "feature_exchange_s_per_step": communication,
                "s_per_step": compute + communication,
            }
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="benchmarks/results/layerwise.json")
    parser.add_argument("--out", default="benchmarks/results/layerwise_projection.json")
    args = parser.parse_args()
    measured = json.load(open(args.results))
    one_rank = {r["comm"]: r for r in measured["strong"] if r["ranks"] == 1}
    # model time per computed atom: local atoms for layer, local + ghost for shell
    c_layer = (
        one_rank["layer"]["model_ms_per_call_rank0"]
        * 1e-3
        / one_rank["layer"]["local_atoms_per_rank"]
    )
    shell = one_rank["shell"]
    c_shell = (
        shell["model_ms_per_call_rank0"]
        * 1e-3
        / (shell["local_atoms_per_rank"] + shell["ghosts_per_rank_avg"])
    )
    out = {
        "model": __doc__.split("Model (stated in docs/pair_style.md):")[1]
        .split("python ")[0]
        .strip(),
        "c_atom_layer_s": c_layer,
        "c_atom_shell_s": c_shell,
        "rows": project(c_layer, c_shell),
    }
    json.dump(out, open(args.out, "w"), indent=1)
    for row in out["rows"]:
        print(
            row["ranks"],
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row["layer"].items()},
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row["shell"].items()},
        )


if __name__ == "__main__":
    main()

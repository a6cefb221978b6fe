"""LAMMPS decks, output parsing and comparisons of the GPU check (benchmarks/gpu_check.py).

Check deck: one LAMMPS process evaluates every (model, dtype, device) stage in turn on the same
rattled diamond-Si box (`run 0` per stage, `pair_style gnnff` re-issued between stages), and
prints one line per stage, ``GNNFF_CHECK <tag> <pe> <p1..p6>`` (pe in eV, the six virial
pressures of ``compute pressure NULL virial`` in bar), and dumps the forces (eV/Å) sorted by atom
id. Comparison per stage against the cpu stage of the same model and dtype (relative errors):

    energy  |E - E_cpu| / max(|E_cpu|, 1e-3 eV * N)
    forces  max |F - F_cpu| / max |F_cpu|         (over all atoms and components)
    virial  max |P - P_cpu| / max |P_cpu|         (over the six components; same volume)

(also recorded, not gated: forces_rms = rms |F - F_cpu| / rms |F_cpu|). The float32 check needs
more than this: the two float32 evaluations round independently (the GPU sums in another
order), so their difference is the sum of two rounding errors. `accuracy` measures each float32
stage against the float64 cpu stage of the same model (the same weights: the float64 model is
the float32 one cast up), the truth both approximate; the device's float32 passes when it is no
less accurate than the cpu's, each error <= max(1e-5, 2 x the cpu's) (ACCURACY_FACTOR).

Bench deck: NVE MD at 300 K on a perfect diamond-Si box; a warm-up run, then a run capped by
LAMMPS's own `timer timeout`, so a slow model stops itself and reports the steps it did.
"""

import os
import re
from typing import Dict, List, Optional

import numpy as np

SI_LATTICE = 5.431  # Å, diamond
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
GATED = ("energy", "forces", "virial")
ACCURACY_FACTOR = 2.0
CHECK_LINE = re.compile(r"^GNNFF_CHECK (\S+) ((?:\S+ ){6}\S+)\s*$", re.M)
LOOP_LINE = re.compile(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
TIMING_LINE = re.compile(
    r"gnnff timing: rank 0 made (\d+) model calls: ([\d.]+) s in the TorchScript call "
    r"\(([\d.]+) ms/call\), ([\d.]+) s building inputs and writing outputs \(([\d.]+) ms/call\), "
    r"([\d.]+) edges/call(?:; of the inputs, ([\d.]+) ms/call building edges on (\d+) threads)?"
)

HEADER = """\
units metal
atom_style atomic
atom_modify map array
boundary p p p
lattice diamond {a}
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 28.0855
neighbor 1.0 bin
"""


def cells_for_atoms(atoms: int) -> int:
    """Cubic diamond cells per side for ``atoms`` atoms (8 per cell); ValueError if not a cube."""
    n = round((atoms / 8) ** (1 / 3))
    if 8 * n**3 != atoms:
        raise ValueError(f"{atoms} atoms is not 8 n^3 (a cubic diamond box); try {8 * n**3}")
    return n


def stage_tag(variant: str, dtype: str, device: str) -> str:
    return f"{variant}-{dtype}-{device.replace(':', '')}"


def pair_lines(model_path: str, device: str, extra: str = "") -> str:
    return f"pair_style gnnff device {device} {extra}".rstrip() + (
        f"\npair_coeff * * {model_path} Si\n"
    )


def check_deck(cells: int, stages: List[dict], seed: int = 4928, rattle: float = 0.3) -> str:
    """``stages``: dicts with tag, model (path), device, extra (pair_style words)."""
    vir = " ".join(f"c_vir[{k}]" for k in range(1, 7))
    out = [HEADER.format(a=SI_LATTICE, n=cells)]
    out.append(f"displace_atoms all random {rattle} {rattle} {rattle} {seed} units box\n")
    out.append("compute vir all pressure NULL virial\n")
    out.append(f"thermo_style custom step pe {vir}\nthermo_modify format float %24.17g\n")
    fields = " ".join(f"$({v}:%.17g)" for v in ["pe"] + vir.split())
    for s in stages:
        out.append(pair_lines(s["model"], s["device"], s.get("extra", "")))
        out.append("run 0\n")
        out.append(f'print "GNNFF_CHECK {s["tag"]} {fields}"\n')
        out.append(
            f"write_dump all custom {s['tag']}.dump id fx fy fz modify sort id format float %.17g\n"
        )
    return "".join(out)


def bench_deck(
    cells: int, model_path: str, device: str, extra: str, warm: int, seconds: float, steps: int
) -> str:
    return (
        HEADER.format(a=SI_LATTICE, n=cells)
        + "velocity all create 300 4928 loop geom\n"
        + pair_lines(model_path, device, extra)
        + "fix nve all nve\nthermo 1000\n"
        + f"run {warm}\n"
        + f"timer timeout {max(1, int(seconds))} every 1\n"
        + f"run {steps}\n"
    )


def read_forces(path: str) -> np.ndarray:
    """Forces (N, 3) of a `write_dump ... id fx fy fz` file, in atom-id order."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ITEM: ATOMS")) + 1
    rows = np.array([[float(w) for w in line.split()] for line in lines[start:] if line.strip()])
    return rows[np.argsort(rows[:, 0]), 1:4]


def parse_check(stdout: str, folder: str) -> Dict[str, dict]:
    """tag -> {energy, pressure (6,), forces (N, 3)} for every stage the run printed."""
    out = {}
    for tag, values in CHECK_LINE.findall(stdout):
        v = [float(w) for w in values.split()]
        out[tag] = dict(
            energy=v[0],
            pressure=np.array(v[1:7]),
            forces=read_forces(os.path.join(folder, f"{tag}.dump")),
        )
    return out


def relative_errors(ref: dict, other: dict) -> Dict[str, float]:
    natoms = len(ref["forces"])

    def rel(a, b):  # max |a - b| / max |b| (a zero reference counts as 1e-300)
        return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)

    def rms(a):
        return float(np.sqrt(np.mean(np.square(a))))

    return dict(
        energy=abs(other["energy"] - ref["energy"]) / max(abs(ref["energy"]), 1e-3 * natoms),
        forces=rel(other["forces"], ref["forces"]),
        virial=rel(other["pressure"], ref["pressure"]),
        forces_rms=rms(other["forces"] - ref["forces"]) / max(rms(ref["forces"]), 1e-300),
    )


def compare(ref: dict, other: dict, dtype: str) -> dict:
    """Relative errors of ``other`` against ``ref`` and whether each is within TOLERANCE[dtype].
    A reference with vanishing forces would prove nothing: it fails."""
    errors = relative_errors(ref, other)
    tol = TOLERANCE[dtype]
    max_force = float(np.max(np.abs(ref["forces"])))
    ok = max_force > 1e-3 and all(errors[k] <= tol for k in GATED)
    return dict(
        tolerance=tol,
        relative_error=errors,
        max_abs_force_ref=max_force,
        energy_ref=ref["energy"],
        passed=bool(ok),
    )


def accuracy(truth: dict, cpu: dict, device: dict) -> dict:
    """Float32 on the device and on the cpu, each against the float64 truth (module docstring):
    passed when every gated error of the device's is <= max(1e-5, ACCURACY_FACTOR x the cpu's)."""
    cpu_err, dev_err = relative_errors(truth, cpu), relative_errors(truth, device)
    tol = TOLERANCE["float32"]
    bound = {k: max(tol, ACCURACY_FACTOR * cpu_err[k]) for k in GATED}
    max_force = float(np.max(np.abs(truth["forces"])))
    return dict(
        cpu_error=cpu_err,
        device_error=dev_err,
        bound=bound,
        passed=bool(max_force > 1e-3 and all(dev_err[k] <= bound[k] for k in GATED)),
    )


def parse_bench(stdout: str) -> Optional[dict]:
    """Loop time of the last run (the capped one) and the pair style's timing split, if any."""
    loops = LOOP_LINE.findall(stdout)
    if len(loops) < 2:
        return None
    loop_s, procs, steps, atoms = loops[-1]
    loop_s, steps, atoms = float(loop_s), int(steps), int(atoms)
    result = dict(
        lammps_procs=int(procs),  # LAMMPS counts MPI ranks x OpenMP threads
        atoms=atoms,
        steps=steps,
        loop_s=loop_s,
        ms_per_step=1e3 * loop_s / max(steps, 1),
        katom_steps_per_s=atoms * steps / loop_s / 1e3 if loop_s > 0 else None,
        warmup_loop_s=float(loops[-2][0]),
    )
    timing = TIMING_LINE.findall(stdout)
    if timing:
        calls, model_s, model_ms, glue_s, glue_ms, edges, build_ms, threads = timing[-1]
        result.update(
            model_calls_rank0=int(calls),
            model_ms_per_call_rank0=float(model_ms),
            glue_ms_per_call_rank0=float(glue_ms),
            edges_per_call_rank0=float(edges),
        )
        if build_ms:  # the pair style's edge build alone (part of glue), and torch's threads
            result.update(edge_build_ms_per_call_rank0=float(build_ms), torch_threads=int(threads))
    return result

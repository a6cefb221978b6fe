"""``gnnff pipeline``: the whole product on built-in data, as the commands a user would type.

Each step runs the public command (``gnnff data generate``, ``gnnff train``, ``gnnff export``,
``mpirun -np N lmp``, ``gnnff analyze``) in a subprocess with this Python, whose output goes to
this terminal. Progress (each step, each command) is logged on the ``gnnff.workflow`` logger;
the first failing step raises :class:`PipelineError`. Printing and the exit status are the
CLI's business (gnnff.cli.pipeline).
"""

import inspect
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from gnnff.workflow.md_deck import render_deck

LOG = logging.getLogger("gnnff.workflow")
SI_MASS = 28.0855  # g/mol, LAMMPS metal units
SW_CUTOFF = 3.77118  # Å, a * sigma of Si.sw: the reference potential's range


@dataclass
class PipelineOptions:
    out: str = "demo"
    model: str = "pair_mlp"  # any registered model: pair_mlp, allegro, nequip, gemnet_t
    max_epochs: int = 60
    decorrelation: bool = False  # add the feature-decorrelation loss term
    md_steps: int = 2000  # 2 ps at 1 fs
    temperature: float = 900.0  # K, the temperature of the crystal reference MD
    nprocs: int = 2
    seed: int = 0


class PipelineError(RuntimeError):
    """A step of the pipeline failed; ``status`` is its exit status (1 when it did not start)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def training_config(opts: PipelineOptions, data_dir: Path, run_dir: Path) -> dict:
    from gnnff.models.registry import model_builder

    model = {"name": opts.model, "type_names": ["Si"], "r_max": SW_CUTOFF}
    # the demo trains in minutes: models with size presets take their smallest one
    if "preset" in inspect.signature(model_builder(opts.model)).parameters:
        model["preset"] = "small"
    loss = {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}}
    if opts.decorrelation:
        loss["decorrelation"] = {}
    return {
        "model": model,
        "data": {
            "train": str(data_dir / "si_train.extxyz"),
            "val": str(data_dir / "si_valid.extxyz"),
        },
        "loss": loss,
        "optimizer": {"name": "adam", "lr": 0.003},
        "scheduler": {"name": "plateau", "factor": 0.5, "patience": 10, "min_lr": 1.0e-5},
        "training": {
            "max_epochs": opts.max_epochs,
            "batch_size": 8,
            "seed": opts.seed,
            "dtype": "float32",
            "ema_decay": 0.99,
            "grad_clip": 10.0,
            "patience": 30,
            # select best.pt on accuracy alone: with --decorrelation val_loss also
            # holds lambda * correlation, whose lambda the scheduler moves
            "monitor": "val_forces_mae",
        },
        "output": {"dir": str(run_dir), "overwrite": True},
    }


def _run(cmd: List[str], cwd: Optional[Path] = None, env: Optional[dict] = None) -> None:
    LOG.info("\n$ %s", " ".join(shlex.quote(c) for c in cmd))
    status = subprocess.call(cmd, cwd=cwd, env=env)
    if status != 0:
        raise PipelineError(f"step failed with exit status {status}: {' '.join(cmd)}", status)


def find_tool(name: str) -> str:
    """A program of this environment (the venv's lmp / mpirun), else one on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise PipelineError(f"`{name}` not found; run `bash scripts/setup.sh` first")
    return found


def write_md_input(opts: PipelineOptions, data_dir: Path, md_dir: Path, model_file: Path) -> Path:
    import ase.io

    start = ase.io.read(data_dir / "si_reference_crystal_900K.extxyz", index=0)
    md_dir.mkdir(parents=True, exist_ok=True)
    ase.io.write(md_dir / "si.data", start, format="lammps-data", specorder=["Si"], masses=True)
    deck = md_dir / "in.md"
    deck.write_text(
        render_deck(
            deck_name="in.md",
            data_file="si.data",
            model_file=os.path.relpath(model_file, md_dir),
            elements="Si",
            temperature=opts.temperature,
            seed=opts.seed + 4928459,
            timestep_ps=0.001,
            tdamp_ps=0.1,
            thermo_every=max(opts.md_steps // 20, 1),
            dump_every=max(opts.md_steps // 100, 1),
            dump_file="traj.dump",
            steps=opts.md_steps,
        )
    )
    return deck


def run_pipeline(opts: PipelineOptions) -> int:
    out = Path(opts.out).resolve()
    data_dir, run_dir, md_dir = out / "data", out / "train", out / "md"
    model_file = out / "model.pt"
    out.mkdir(parents=True, exist_ok=True)
    gnnff = [sys.executable, "-m", "gnnff.cli"]

    LOG.info("== 1/5 reference data: Si with Stillinger-Weber (LAMMPS), --size small")
    _run(
        gnnff
        + [
            "data",
            "generate",
            "si",
            "--size",
            "small",
            "--seed",
            str(opts.seed),
            "-o",
            str(data_dir),
            "--overwrite",
        ]
    )

    LOG.info("\n== 2/5 train a %s model", opts.model)
    config_file = out / "train.yaml"
    config_file.write_text(
        yaml.safe_dump(training_config(opts, data_dir, run_dir), sort_keys=False)
    )
    _run(gnnff + ["train", str(config_file)])
    _run(gnnff + ["eval", str(run_dir / "best.pt"), str(data_dir / "si_test.extxyz")])

    LOG.info("\n== 3/5 export to TorchScript for pair_style gnnff")
    _run(gnnff + ["export", str(run_dir / "best.pt"), "-o", str(model_file)])

    LOG.info(
        "\n== 4/5 LAMMPS MD: %d steps NVT at %g K on %d MPI ranks",
        opts.md_steps,
        opts.temperature,
        opts.nprocs,
    )
    deck = write_md_input(opts, data_dir, md_dir, model_file)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    _run(
        [
            find_tool("mpirun"),
            "-np",
            str(opts.nprocs),
            find_tool("lmp"),
            "-in",
            deck.name,
            "-log",
            "log.lammps",
        ],
        cwd=md_dir,
        env=env,
    )

    LOG.info("\n== 5/5 stability of the trajectory")
    _run(
        gnnff
        + [
            "analyze",
            str(md_dir / "traj.dump"),
            "--log",
            str(md_dir / "log.lammps"),
            "--reference",
            str(data_dir / "si_reference_crystal_900K.extxyz"),
            "--json",
            str(out / "stability.json"),
            "--plot",
            str(out / "stability.png"),
        ]
    )
    LOG.info("\nAll outputs are in %s", out)
    return 0

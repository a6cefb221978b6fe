"""A real effect on small data: training pair_mlp on Lennard-Jones data (labels from ASE) with the
decorrelation term lowers the validation edge-feature correlation against the same training
without it, at a comparable validation force MAE.

1. Through the trainer (`gnnff train`'s Trainer, config `loss: {decorrelation: ...}`), for seeds
   0, 1, 2 (model initialisation and data order): the baseline runs have no decorrelation term;
   their final models are measured afterwards with the measure the trainer logs (checked equal on
   the decorrelated runs). Claims, on the ratio of the 3-seed means: val correlation < 0.8x
   baseline and lower for every seed; val force MAE <= 1.15x baseline; and the baseline learned.
   Why several seeds and a cosine schedule: one 320-step run at a constant lr is chaotic; the
   same seed gave MAE 0.463 -> 0.646 (1.40x) on an AMD EPYC and 0.576 -> 0.511 on an Intel CPU,
   and over seeds 0-7 the last-epoch MAE ratio spanned 0.29-1.17 (ATEN_CPU_CAPABILITY=default).
   With the lr annealed to 1e-4 the end point is the converged model: per seed the two CPU code
   paths (ATEN_CPU_CAPABILITY=default, i.e. scalar kernels, and avx2; AMD EPYC, measured on a
   loaded 2-core machine with measure_effect_spread.py) now differ by <= 2 % in MAE and agree to
   0.005 in the correlation ratio. Measured for seeds 0-2: correlation ratio 0.754 / 0.755,
   MAE ratio 0.977 / 0.976 (default / avx2). Spread of the same statistic over all 20 triples of
   seeds 0-5: correlation 0.63-0.84 (2 triples above 0.8), MAE 0.94-1.05; per seed the
   correlation ratio is 0.51-0.86, always < 1. The 0.8 bound is thus a claim about these seeds'
   mean (margin 0.045), the "every seed lower" and MAE claims hold for any seed measured.
2. A trainer-independent cross-check with an explicit loop (slow): < 0.75x and <= 1.2x
   (measured: 0.573x and 0.41x with ATEN_CPU_CAPABILITY=default, 0.570x and 0.43x with avx2;
   full-batch steps, so one run is not chaotic here).
"""

import os

import ase.io
import pytest
import torch
from decorrelation_helpers import collate, lennard_jones_dataset, lennard_jones_structures

from gnnff import keys
from gnnff.models import available_models, build_model, features
from gnnff.training import correlation
from gnnff.training.decorrelation import RAW_LOG_KEY, corr_log_key
from gnnff.training.loss_terms import build_loss_term

STEPS = 300
CORRELATION_RATIO_MAX = 0.75
MAE_RATIO_MAX = 1.2
TRAINER_SEEDS = (0, 1, 2)
TRAINER_EPOCHS = 80
TRAINER_CORRELATION_RATIO_MAX = 0.8
TRAINER_MAE_RATIO_MAX = 1.15


@pytest.fixture
def one_thread():
    # tiny tensors: threads only contend with each other on a shared 2-core machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(with_decorrelation: bool, train, val, seed=0, edge_subsample=None, channels=None):
    """The training term uses ``edge_subsample`` (None: all edges; "default": the term's own
    default) and ``channels`` (channel_subsample; None: the default, which measures these 16-
    channel layers whole); the validation correlation is always the exact all-edge measure."""
    torch.manual_seed(seed)
    model = build_model(
        "pair_mlp", type_names=["Ar"], r_max=4.0, hidden=16, num_layers=2, angular=False, seed=seed
    )
    model = model.double()
    features.set_recording(model, True)
    options = {} if edge_subsample == "default" else {"edge_subsample": edge_subsample}
    if channels is not None:
        options["channel_subsample"] = channels
    term = build_loss_term("decorrelation", schedule="adaptive", target_fraction=0.1, **options)
    assert (term.edge_subsample is None) == (edge_subsample is None)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(STEPS):
        pred = model(dict(train))
        loss_force = ((pred[keys.FORCES] - train[keys.FORCES]) ** 2).mean()
        loss_dec = term(pred, train, model)  # measured in both runs, trained on in one
        loss = loss_force + loss_dec if with_decorrelation else loss_force
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if with_decorrelation:
            term.on_step(step + 1, 0, {"forces": float(loss_force.detach())})
    model.eval()
    pred = model(dict(val))
    exact = build_loss_term("decorrelation", edge_subsample=None)
    exact(pred, val, model)
    logs = exact.batch_logs()
    mae = float((pred[keys.FORCES] - val[keys.FORCES]).abs().mean().detach())
    return mae, logs, term.coefficient


# all edges (edge_subsample: null): the effect below was measured, and is compared with
# validation_correlation, on the exact full-batch measure, not the default 1024-edge subsample
DEC_CONFIG = {
    "schedule": "adaptive",
    "target_fraction": 0.05,
    "reference_weight": 10.0,
    "edge_subsample": None,
}


def validation_correlation(model, dataset, batch_size=4):
    """Sum over layers of the edge-feature correlation, averaged over validation batches of
    ``batch_size`` structures: the measure the trainer logs as val_decorrelation_unweighted,
    applied the same way to a model trained without the term."""
    from gnnff.data import collate as trainer_collate

    was_training = model.training
    model.eval()
    features.set_recording(model, True)
    per_batch = []
    for start in range(0, len(dataset), batch_size):
        pred = model(
            trainer_collate(
                [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            )
        )
        per_batch.append(sum(
            float(correlation.layer_correlation(pred[keys.edge_feature_key(i)].detach(), irreps))
            for i, irreps in enumerate(features.edge_feature_irreps(model))
        ))  # fmt: skip
    model.train(was_training)
    return sum(per_batch) / len(per_batch)


def trainer_run(folder, name, decorrelation, seed=0, epochs=80, measure_every_epoch=False):
    """Train pair_mlp on LJ data through the Trainer; return the last history row, and the
    validation force MAE and correlation (same measure for both runs), per epoch if asked."""
    from gnnff.training.config import resolve_config
    from gnnff.training.trainer import Trainer

    loss = {"energy": {"weight": 1.0}, "forces": {"weight": 10.0}}
    if decorrelation is not None:
        loss["decorrelation"] = decorrelation
    config = resolve_config({
        "model": {"name": "pair_mlp", "type_names": ["Ar"], "r_max": 4.0, "hidden": 16, "num_layers": 2, "angular": False,
                  "seed": seed},
        "data": {"train": os.path.join(folder, "train.extxyz"), "val": os.path.join(folder, "val.extxyz")},
        "loss": loss,
        "optimizer": {"name": "adam", "lr": 5e-3},
        # cosine to lr/50: the last epochs take small steps, so the final validation error is
        # the converged model's, not one sample of the constant-lr oscillation (measured: with a
        # constant lr the val MAE of the last epoch jumps by up to 2x from one epoch to the next)
        "scheduler": {"name": "cosine", "min_lr": 1e-4},
        "training": {"max_epochs": epochs, "batch_size": 4, "seed": seed, "dtype": "float64", "ema_decay": None,
                     "progress_bar": False, "patience": 10000},
        "output": {"dir": os.path.join(folder, f"{name}_{seed}"), "overwrite": True},
    })  # fmt: skip
    curves = {"mae": [], "corr": []}

    def measure(trainer, event):
        if event == "epoch" and (measure_every_epoch or trainer.epoch == epochs):
            curves["mae"].append(trainer.history[-1]["val_forces_mae"])
            curves["corr"].append(validation_correlation(trainer.model, trainer.datasets["val"]))

    trainer = Trainer(config, resume=None, callbacks=[measure])
    summary = trainer.run()
    return dict(curves, last=summary["history"][-1])


@pytest.mark.skipif("pair_mlp" not in available_models(), reason="pair_mlp is not registered")
def test_trainer_with_decorrelation_lowers_validation_correlation(tmp_path, one_thread):
    ase.io.write(tmp_path / "train.extxyz", lennard_jones_structures(16, seed=1))
    ase.io.write(tmp_path / "val.extxyz", lennard_jones_structures(8, seed=2))
    base = [
        trainer_run(str(tmp_path), "base", None, seed=s, epochs=TRAINER_EPOCHS)
        for s in TRAINER_SEEDS
    ]
    dec = [
        trainer_run(str(tmp_path), "dec", DEC_CONFIG, seed=s, epochs=TRAINER_EPOCHS)
        for s in TRAINER_SEEDS
    ]

    def mean(runs, what):
        return sum(run[what][-1] for run in runs) / len(runs)

    for run in dec:  # the trainer logs the same measure the baseline is given afterwards
        assert run["corr"][-1] == pytest.approx(run["last"]["val_" + RAW_LOG_KEY], rel=1e-9)
        for layer in (0, 1):
            assert (
                "train_" + corr_log_key(layer) in run["last"]
                and "val_" + corr_log_key(layer) in run["last"]
            )
    corr_ratio = mean(dec, "corr") / mean(base, "corr")
    mae_ratio = mean(dec, "mae") / mean(base, "mae")
    print(
        f"seeds {TRAINER_SEEDS}: val corr base {[round(r['corr'][-1], 3) for r in base]} "
        f"dec {[round(r['corr'][-1], 3) for r in dec]} (ratio of means {corr_ratio:.3f}); val force MAE "
        f"base {[round(r['mae'][-1], 3) for r in base]} dec {[round(r['mae'][-1], 3) for r in dec]} "
        f"(ratio of means {mae_ratio:.3f})"
    )
    assert corr_ratio < TRAINER_CORRELATION_RATIO_MAX
    assert all(
        d["corr"][-1] < b["corr"][-1] for d, b in zip(dec, base)
    )  # every seed, not only on average
    assert mae_ratio <= TRAINER_MAE_RATIO_MAX
    assert mean(base, "mae") < 1.0  # the baseline learned (mean |F| of the val set ~5.8 eV/Å)


@pytest.mark.slow
@pytest.mark.skipif("pair_mlp" not in available_models(), reason="pair_mlp is not registered")
@pytest.mark.parametrize(
    "subsample, channels", [(None, None), ("default", None), ("default", 6)],
    ids=["all_edges", "default", "default_6_channels"],
)  # fmt: skip
def test_decorrelation_lowers_validation_correlation_at_similar_force_error(
    one_thread, subsample, channels
):
    """Also with the term's default 1024-edge subsample (the training batch has 3974 edges, so
    the subsample is active), and with 6 of each layer's 16 channels drawn per step (the
    channel subsample that wide layers get by default); measured on an AMD EPYC: correlation
    ratio 0.570 (all edges), 0.505 (default), 0.563 (6 channels), MAE ratio 0.43 /
    0.51 / 0.61."""
    train = collate(lennard_jones_dataset(16, seed=1))
    val = collate(lennard_jones_dataset(8, seed=2))
    assert train[keys.EDGE_INDEX].shape[1] > 1024
    mae_base, logs_base, _ = _train(False, train, val)
    mae_dec, logs_dec, lam = _train(True, train, val, edge_subsample=subsample, channels=channels)
    print(
        f"baseline: MAE {mae_base:.4f} eV/Å, corr {logs_base}; decorrelated: MAE {mae_dec:.4f}, corr {logs_dec}, lambda {lam:.4g}"
    )
    assert logs_dec[RAW_LOG_KEY] < CORRELATION_RATIO_MAX * logs_base[RAW_LOG_KEY]
    for layer in (0, 1):  # every layer, not just their sum
        assert logs_dec[corr_log_key(layer)] < logs_base[corr_log_key(layer)]
    assert mae_dec <= MAE_RATIO_MAX * mae_base
    assert mae_base < 1.0  # the baseline did learn (mean |F| of the validation set is ~5.8 eV/Å)

"""The decorrelation LossTerm: config schema, logs, state, and every model of the project."""

import ase
import numpy as np
import pytest
import torch
from decorrelation_helpers import tiny_model

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.models import available_models, build_model, features
from gnnff.training import correlation
from gnnff.training.decorrelation import (
    LAMBDA_LOG_KEY,
    RAW_LOG_KEY,
    DecorrelationLoss,
    corr_log_key,
)
from gnnff.training.loss_terms import available_loss_terms, build_loss_term

# small versions of every model of the project (models written later are skipped until present)
SMALL_MODELS = {
    "pair_mlp": dict(r_max=3.5, hidden=8, num_layers=2, num_channels=4),
    "allegro": dict(r_max=3.5, l_max=2, n_layers=2, num_channels=4, latent_dim=8, mlp_hidden=8),
    "nequip": dict(r_max=3.5),
    "gemnet_t": dict(r_max=3.5, num_blocks=2, emb_size_atom=8, emb_size_edge=8, emb_size_trip=4,
                     emb_size_rbf=4, emb_size_cbf=4, emb_size_bil_trip=4, num_spherical=3, num_radial=4),
    "toy_message_passing": dict(r_max=3.5),
}  # fmt: skip


def _cluster(seed=0):
    rng = np.random.default_rng(seed)
    grid = (
        np.array([[x, y, z] for x in range(3) for y in range(2) for z in range(2)], dtype=float)
        * 2.3
    )
    return ase.Atoms("Si12", positions=grid + rng.normal(scale=0.15, size=grid.shape), pbc=False)


def _build(name, dtype):
    if name == "tiny":
        return tiny_model(r_max=3.5, dtype=dtype), ["Ar"]
    if name not in available_models():
        pytest.skip(f"model {name!r} is not registered yet")
    model = build_model(name, type_names=["Si"], **SMALL_MODELS[name])
    return model.to(dtype), ["Si"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["tiny", *SMALL_MODELS])
def test_every_model_value_gradient_and_rotation_invariance(name, dtype):
    from e3nn import o3

    torch.manual_seed(0)
    model, type_names = _build(name, dtype)
    model.train()
    features.set_recording(model, True)
    term = build_loss_term("decorrelation", schedule="constant", lambda_value=0.5)
    atoms = _cluster()
    atoms.set_chemical_symbols(type_names * len(atoms))
    graph = atoms_to_graph(atoms, type_names, model.r_max, dtype=dtype)
    pred = model(dict(graph))
    loss = term(pred, graph, model)
    # the value is lambda * the sum over layers of the measure applied to what the model recorded
    irreps = features.edge_feature_irreps(model)
    assert graph[keys.EDGE_INDEX].shape[1] < 1024  # below the default subsample: all edges
    direct = sum(  # collect: the recorded features converted to the e3nn layout
        float(correlation.layer_correlation(x.detach(), ir))
        for ir, x in features.collect(pred, model)
    )
    assert float(loss.detach()) == pytest.approx(0.5 * direct, rel=1e-5)
    assert set(term.batch_logs()) == {corr_log_key(i) for i in range(len(irreps))} | {RAW_LOG_KEY}
    # it trains the model's parameters, with finite gradients
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # rotating the structure leaves the measure unchanged (each model's irreps describe its features)
    rotation = o3.rand_matrix(dtype=torch.float64).numpy()
    atoms.positions = atoms.positions @ rotation.T
    graph_rot = atoms_to_graph(atoms, type_names, model.r_max, dtype=dtype)
    loss_rot = term(model(dict(graph_rot)), graph_rot, model)
    tol = 1e-8 if dtype == torch.float64 else 2e-3
    assert float(loss_rot.detach()) == pytest.approx(float(loss.detach()), rel=tol)


def test_registered_and_layer_choice():
    assert "decorrelation" in available_loss_terms()
    model = tiny_model()
    features.set_recording(model, True)
    atoms = _cluster()
    atoms.set_chemical_symbols(["Ar"] * len(atoms))
    graph = atoms_to_graph(atoms, ["Ar"], 4.0)
    pred = model(dict(graph))
    last = build_loss_term("decorrelation", layers=[-1], lambda_value=2.0)
    value = last(pred, graph, model)
    logs = last.batch_logs()
    assert float(value.detach()) == pytest.approx(2.0 * logs[corr_log_key(1)], rel=1e-12)
    assert corr_log_key(0) in logs  # unchosen layers are still logged (log_all_layers)
    only = build_loss_term("decorrelation", layers=1, log_all_layers=False)
    only(pred, graph, model)
    assert set(only.batch_logs()) == {corr_log_key(1), RAW_LOG_KEY}
    assert only.epoch_logs() == {LAMBDA_LOG_KEY: 1.0}
    with pytest.raises(
        ValueError, match=r"layers \[2\] do not exist: the model exposes 2 edge-feature layers"
    ):
        build_loss_term("decorrelation", layers=[0, 2])(pred, graph, model)


def test_recording_off_and_featureless_models_give_clear_errors():
    model = tiny_model()
    atoms = _cluster()
    atoms.set_chemical_symbols(["Ar"] * len(atoms))
    graph = atoms_to_graph(atoms, ["Ar"], 4.0)
    term = build_loss_term("decorrelation")
    with pytest.raises(ValueError, match="no edge features for layers \\[0, 1\\].*set_recording"):
        term(model(dict(graph)), graph, model)
    if "lennard_jones" in available_models():
        lj = build_model("lennard_jones", type_names=["Ar"], cutoff=4.0)
        with pytest.raises(
            ValueError, match="exposes no edge-feature layers.*remove `decorrelation`"
        ):
            term(lj(dict(graph)), graph, lj)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "cosine"}, "unknown decorrelation schedule 'cosine'.*warmup_cosine"),
        (
            {"schedule": "constant", "target_fraction": 0.1},
            r"\['target_fraction'\] do not apply to the 'constant'",
        ),
        ({"reduction": "median"}, "unknown correlation reduction 'median'"),
        ({"layers": "last"}, "layers must be 'all', a layer index"),
        ({"edge_subsample": 1.5}, "edge_subsample must be null"),
        ({"edge_subsample": 1}, "edge_subsample must be null"),
        ({"lambda": 1.0}, "has no option 'lambda'"),
        (
            {"schedule": "warmup_cosine", "schedule_unit": "epochs"},
            "schedule_unit must be 'epoch' or 'step'",
        ),
    ],
)
def test_config_errors_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_loss_term("decorrelation", **kwargs)


def test_schedule_hooks_lambda_logs_and_state_roundtrip():
    model = tiny_model()
    features.set_recording(model, True)
    atoms = _cluster()
    atoms.set_chemical_symbols(["Ar"] * len(atoms))
    graph = atoms_to_graph(atoms, ["Ar"], 4.0)
    pred = model(dict(graph))
    warm = build_loss_term(
        "decorrelation", schedule="warmup_cosine", lambda_value=1.0, warmup=2, decay=2
    )
    value = warm(pred, graph, model)
    assert float(value) == 0.0 and not value.requires_grad  # lambda(0) = 0: no graph is built
    assert warm.batch_logs()[corr_log_key(0)] > 0  # but the correlation is still measured
    warm.on_step(1, 0, {})
    warm.on_epoch_end(0)
    assert warm.epoch_logs()[LAMBDA_LOG_KEY] == pytest.approx(0.5)

    adaptive = build_loss_term(
        "decorrelation",
        schedule="adaptive",
        target_fraction=0.1,
        ema_decay=0.0,
        adaptation_rate=1.0,
        max_change=100.0,
    )
    raw = float(adaptive(pred, graph, model).detach())
    adaptive.on_step(1, 0, {"forces": 0.3, "energy": 1.0})
    assert adaptive.coefficient == pytest.approx(
        0.1 * 0.3 / raw, rel=1e-9
    )  # rate 1: jumps to lambda*
    with pytest.raises(ValueError, match="needs the 'forces' loss term.*set reference_term"):
        adaptive.on_step(2, 0, {"energy": 1.0})
    restored = build_loss_term("decorrelation", schedule="adaptive", target_fraction=0.1)
    restored.load_state_dict(adaptive.state_dict())
    assert restored.coefficient == adaptive.coefficient
    assert isinstance(restored, DecorrelationLoss) and restored.needs_edge_features


def test_edge_subsample_in_the_term():
    model = tiny_model()
    features.set_recording(model, True)
    atoms = _cluster()
    atoms.set_chemical_symbols(["Ar"] * len(atoms))
    graph = atoms_to_graph(atoms, ["Ar"], 4.0)
    pred = model(dict(graph))
    n_edges = graph[keys.EDGE_INDEX].shape[1]
    full = float(build_loss_term("decorrelation")(pred, graph, model).detach())
    same = float(
        build_loss_term("decorrelation", edge_subsample=n_edges + 5)(pred, graph, model).detach()
    )
    assert same == full
    torch.manual_seed(0)
    part = float(build_loss_term("decorrelation", edge_subsample=0.5)(pred, graph, model).detach())
    assert part != full and 0 < part < 2


def test_example_configs_build():
    import glob
    import os

    from gnnff.training.config import load_config

    root = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "configs")
    paths = sorted(glob.glob(os.path.join(root, "*decorrelation*.yaml")))
    assert paths
    for path in paths:
        config = load_config(path, [])
        term = build_loss_term("decorrelation", **config["loss"]["decorrelation"])
        assert term.needs_edge_features
        model_cfg = dict(config["model"])
        name = model_cfg.pop("name")
        if name in available_models():
            model = build_model(name, **model_cfg)
            term.chosen_layers(
                len(features.edge_feature_irreps(model))
            )  # layer choice fits the model

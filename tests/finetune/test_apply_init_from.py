"""gnnff.training.finetune.apply_init_from: weights, element remapping, freezing, lr groups.

Truth: the pre-trained checkpoint's own tensors (row by row, by element name) and the freshly
built model's initial tensors; no training here (see test_pretrain_finetune.py for that).
"""

import inspect

import pytest
import torch

from gnnff.models import registry
from gnnff.models.registry import available_models, build_model
from gnnff.training import checkpoint as ckpt
from gnnff.training.finetune import apply_init_from
from gnnff.training.setup import make_optimizer

MODELS = {
    "gemnet_t": {"preset": "small", "r_max": 3.0},
    "pair_mlp": {"r_max": 3.0},
    "allegro": {"r_max": 3.0},
    "nequip": {"r_max": 3.0},
}


def model_options(name):
    if name not in available_models():
        pytest.skip(f"model {name!r} is not registered in this checkout")
    return dict(MODELS[name])


def build(name, type_names, seed, **options):
    """Seeded model; through the builder's ``seed`` option where it has one."""
    if "seed" in inspect.signature(registry.model_builder(name)).parameters:
        options["seed"] = seed
    torch.manual_seed(seed)
    return build_model(name, type_names=type_names, **options), options


def write_checkpoint(tmp_path, name, type_names, seed=1, lineage=None, **options):
    model, options = build(name, type_names, seed, **dict(model_options(name), **options))
    with torch.no_grad():
        model.per_type_energy_shift.copy_(
            torch.arange(len(type_names), dtype=torch.float32) - 100.0
        )
        model.per_type_energy_scale.copy_(torch.arange(len(type_names), dtype=torch.float32) + 2.0)
    state = {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "model_config": dict(options, name=name, type_names=list(type_names)),
        "type_names": list(type_names),
        "dtype": "float32",
        "model_state": model.state_dict(),
        "ema_state": None,
        "epoch": 7,
        "step": 70,
        "lineage": lineage or {"data": {"files": {"train": ["broad.xyz"]}}},
    }
    path = str(tmp_path / f"{name}-pretrained.pt")
    ckpt.save_checkpoint(state, path)
    return path, model


@pytest.mark.parametrize("name", list(MODELS))
def test_weights_copied_and_type_rows_remapped_by_element(tmp_path, name):
    path, pretrained = write_checkpoint(tmp_path, name, ["H", "C", "N", "O"])
    # new element set: different order, N dropped, S new
    model, _ = build(name, ["O", "S", "H"], 2, **model_options(name))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    lineage, groups = apply_init_from(model, {"checkpoint": path}, model.type_names)
    old, new = pretrained.state_dict(), model.state_dict()
    embeddings = [k for k in new if "type_embedding" in k]
    assert embeddings, f"{name} keeps no per-type parameters under a 'type_embedding' name"
    for key in new:
        if "type_embedding" in key:
            assert torch.equal(new[key][0], old[key][3])  # O
            assert torch.equal(new[key][2], old[key][0])  # H
            assert torch.equal(new[key][1], fresh[key][1])  # S: new element keeps its fresh init
        elif key == "per_type_energy_shift":
            assert torch.equal(new[key], fresh[key])  # re-fitted by the trainer, never copied
        elif key == "per_type_energy_scale":
            assert new[key].tolist() == [5.0, pytest.approx(old[key].mean().item()), 2.0]
        else:
            assert torch.equal(new[key], old[key]), key
    assert lineage["shared_types"] == ["O", "H"] and lineage["new_types"] == ["S"]
    assert lineage["init_from"].endswith(f"{name}-pretrained.pt")
    assert lineage["pretrain_data"] == {"files": {"train": ["broad.xyz"]}}
    assert lineage["checkpoint_step"] == 70 and len(lineage["checkpoint_sha256"]) == 64
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_ema_weights_are_preferred(tmp_path):
    path, pretrained = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    state = ckpt.load_checkpoint(path)
    shadow = {k: v + 1.0 if v.is_floating_point() else v for k, v in state["model_state"].items()}
    state["ema_state"] = {"decay": 0.99, "num_updates": 3, "shadow": shadow}
    ckpt.save_checkpoint(state, path)
    key = "energy_model.out_block_0.out_energy.linear.weight"
    for use_ema, want in ((True, shadow[key]), (False, state["model_state"][key])):
        model = build_model("gemnet_t", type_names=["H", "C"], **MODELS["gemnet_t"])
        lineage, _ = apply_init_from(model, {"checkpoint": path, "use_ema": use_ema}, ["H", "C"])
        assert torch.equal(model.state_dict()[key], want)
        assert lineage["weights"] == ("ema" if use_ema else "model")


def test_other_architecture_is_refused_with_both_names(tmp_path):
    path, _ = write_checkpoint(tmp_path, "pair_mlp", ["H", "C"])
    model = build_model("gemnet_t", type_names=["H", "C"], **MODELS["gemnet_t"])
    with pytest.raises(
        ValueError, match="holds a 'pair_mlp' model but the config builds 'gemnet_t'"
    ):
        apply_init_from(model, {"checkpoint": path}, ["H", "C"])


def test_other_sizes_or_cutoff_are_refused(tmp_path):
    path, _ = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    wider = build_model(
        "gemnet_t", type_names=["H", "C"], preset="small", r_max=3.0, emb_size_edge=24
    )
    with pytest.raises(ValueError, match="shape.*use the checkpoint's model: sizes"):
        apply_init_from(wider, {"checkpoint": path}, ["H", "C"])
    longer = build_model("gemnet_t", type_names=["H", "C"], preset="small", r_max=4.0)
    with pytest.raises(ValueError, match="r_max 3.0 Å.*r_max 4.0 Å"):
        apply_init_from(longer, {"checkpoint": path}, ["H", "C"])


def test_bad_options_are_named(tmp_path):
    path, _ = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    model = build_model("gemnet_t", type_names=["H", "C"], **MODELS["gemnet_t"])
    with pytest.raises(
        ValueError, match="no option 'backbone_lr'.*did you mean 'backbone_lr_factor'"
    ):
        apply_init_from(model, {"checkpoint": path, "backbone_lr": 0.1}, ["H", "C"])
    with pytest.raises(ValueError, match="init_from needs a checkpoint"):
        apply_init_from(model, {"freeze": ["x"]}, ["H", "C"])
    with pytest.raises(ValueError, match="does not exist"):
        apply_init_from(model, {"checkpoint": str(tmp_path / "nope.pt")}, ["H", "C"])
    with pytest.raises(
        ValueError, match="pattern 'int_block.7' matches no parameter; module names"
    ):
        apply_init_from(model, {"checkpoint": path, "freeze": ["int_block.7"]}, ["H", "C"])


def test_freeze_patterns(tmp_path):
    path, _ = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    model = build_model("gemnet_t", type_names=["H", "C"], **MODELS["gemnet_t"])
    lineage, groups = apply_init_from(
        model, {"checkpoint": path, "freeze": ["type_embedding", "int_blocks.0"]}, ["H", "C"]
    )
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == set(lineage["frozen"])
    assert "energy_model.type_embedding.weight" in frozen
    assert any(n.startswith("energy_model.int_blocks.0.") for n in frozen)
    assert not any(n.startswith("energy_model.int_blocks.1.") for n in frozen)
    assert all(p.requires_grad for g in groups for p in g["params"])


def test_freezing_embedding_of_new_elements_is_refused(tmp_path):
    path, _ = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    model = build_model("gemnet_t", type_names=["H", "C", "O"], **MODELS["gemnet_t"])
    with pytest.raises(ValueError, match=r"elements \['O'\] are new"):
        apply_init_from(model, {"checkpoint": path, "freeze": ["type_embedding"]}, ["H", "C", "O"])


def test_backbone_learning_rate_factor(tmp_path):
    path, _ = write_checkpoint(tmp_path, "gemnet_t", ["H", "C"])
    model = build_model("gemnet_t", type_names=["H", "C"], **MODELS["gemnet_t"])
    _, groups = apply_init_from(model, {"checkpoint": path, "backbone_lr_factor": 0.1}, ["H", "C"])
    names = {id(p): n for n, p in model.named_parameters()}
    head = {names[id(p)] for p in groups[0]["params"]}
    backbone = {names[id(p)] for p in groups[1]["params"]}
    assert head and backbone and not head & backbone
    assert head | backbone == set(names.values())
    assert all("out_block" in n or "type_embedding" in n for n in head)
    optimizer = make_optimizer(
        groups,
        {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "amsgrad": False, "betas": [0.9, 0.999]},
    )
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(1e-3), pytest.approx(1e-4)]

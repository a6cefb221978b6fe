"""Config loading: defaults, overrides, and clear errors for misspelt keys."""

import pytest

from gnnff.training.config import DEFAULTS, apply_overrides, load_config, resolve_config

BASE = {"model": {"name": "pair_mlp", "type_names": ["Si"]}, "data": {"train": "x.extxyz"}}


def test_defaults_fill_missing_keys():
    config = resolve_config(BASE)
    assert config["training"]["max_epochs"] == DEFAULTS["training"]["max_epochs"]
    assert config["loss"] == DEFAULTS["loss"]


def test_overrides_are_parsed_as_yaml():
    config = resolve_config(
        BASE,
        [
            "training.max_epochs=5",
            "training.ema_decay=null",
            "optimizer.betas=[0.8, 0.9]",
            "loss.forces.weight=3",
        ],
    )
    assert config["training"]["max_epochs"] == 5 and config["training"]["ema_decay"] is None
    assert config["optimizer"]["betas"] == [0.8, 0.9]
    assert config["loss"] == {"forces": {"weight": 3}}


@pytest.mark.parametrize(
    "override, hint",
    [
        ("training.max_epoch=3", "did you mean 'max_epochs'"),
        ("trainng.max_epochs=3", "did you mean 'training'"),
        ("data.val_fracton=0.2", "did you mean 'val_fraction'"),
    ],
)
def test_misspelt_keys_name_the_closest(override, hint):
    with pytest.raises(ValueError, match=hint):
        resolve_config(BASE, [override])


def test_model_option_typo_is_caught_before_training(tmp_path):
    from gnnff.training.trainer import Trainer

    config = resolve_config(
        {**BASE, "model": {"name": "pair_mlp", "type_names": ["Si"], "hiden": 8}}
    )
    with pytest.raises(ValueError, match="did you mean 'hidden'"):
        Trainer(config)


def test_override_without_equals_is_explained():
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["training.max_epochs"])


def test_bad_values_are_explained(tmp_path):
    with pytest.raises(ValueError, match="training.dtype must be float32 or float64"):
        resolve_config(BASE, ["training.dtype=float16"])
    path = tmp_path / "c.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        load_config(str(path))
    with pytest.raises(ValueError, match="data.train is required"):
        resolve_config({"model": BASE["model"]})


def test_example_config_trains_one_epoch(tmp_path):
    """examples/configs/pair_mlp_si.yaml is valid; with tiny LJ-labelled Si data it trains."""
    import os

    import ase.io
    from ase.build import bulk
    from ase.calculators.lj import LennardJones

    from gnnff.training.trainer import Trainer

    frames = []
    for k in range(6):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.1, seed=k)
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.1, rc=3.77)
        atoms.get_forces()
        frames.append(atoms)
    ase.io.write(tmp_path / "si.extxyz", frames)
    example = os.path.join(
        os.path.dirname(__file__), "..", "..", "examples", "configs", "pair_mlp_si.yaml"
    )
    config = load_config(
        example,
        [
            f"data.train={tmp_path / 'si.extxyz'}",
            "data.val=null",
            "data.val_fraction=0.34",
            "training.max_epochs=1",
            f"output.dir={tmp_path / 'run'}",
            "training.progress_bar=false",
        ],
    )
    summary = Trainer(config).run()
    assert summary["epochs"] == 1 and (tmp_path / "run" / "best.pt").exists()

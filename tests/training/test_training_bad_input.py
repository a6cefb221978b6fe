"""Bad input is refused by Trainer(...) — before any training step — with the problem and the fix."""

import os

import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from training_helpers import emt_structures, small_config

from gnnff.training.config import resolve_config
from gnnff.training.trainer import Trainer


def _refused(config, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        Trainer(resolve_config(config))
    assert not os.path.exists(tmp_path / "run" / "last.pt")


def test_file_without_forces(tmp_path):
    frames = []
    for atoms in emt_structures(6):
        energy = atoms.get_potential_energy()
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
        frames.append(atoms)
    ase.io.write(tmp_path / "e.extxyz", frames)
    _refused(
        small_config(str(tmp_path / "e.extxyz"), str(tmp_path / "run")),
        "no forces in the data file",
        tmp_path,
    )


def test_element_the_model_has_no_type_for(emt_file, tmp_path):
    config = small_config(emt_file, str(tmp_path / "run"))
    config["model"]["type_names"] = ["Cu"]
    _refused(config, r"elements \['Al'\] have no type in the model", tmp_path)


def test_nan_in_labels(tmp_path):
    frames = emt_structures(6)
    frames[4].calc.results["forces"][0, 0] = np.nan
    ase.io.write(tmp_path / "n.extxyz", frames)
    _refused(
        small_config(str(tmp_path / "n.extxyz"), str(tmp_path / "run")),
        r"\[4\]: forces contains NaN",
        tmp_path,
    )


def test_empty_validation_split(emt_file, tmp_path):
    config = small_config(emt_file, str(tmp_path / "run"), data={"val_fraction": 0.0})
    _refused(config, "val split is empty.*val_fraction", tmp_path)


def test_unknown_monitor_is_explained(emt_file, tmp_path):
    config = small_config(emt_file, str(tmp_path / "run"), training={"monitor": "val_force_mae"})
    _refused(config, "not a logged column \\(did you mean 'val_forces_mae'\\?\\)", tmp_path)


def test_resume_from_a_file_that_is_not_a_checkpoint(emt_file, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable gnnff checkpoint"):
        Trainer(
            resolve_config(small_config(emt_file, str(tmp_path / "run"))),
            resume=str(tmp_path / "junk.pt"),
        )

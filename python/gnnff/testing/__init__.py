"""gnnff.testing: the physics battery every gnnff energy model passes (as nequip ships its model
test mixin), for gnnff's own tests and for anyone adding a model (docs/extending.md).

* ``EnergyModelBattery``: pytest base class; subclass it and define ``make_model(self, dtype)``.
* ``check_*(model, dtype)``: the same checks one by one; each raises AssertionError saying what
  broke. ``run_all(factory)`` runs them all from a script.

Independent truths used: exact symmetry operations (rotation, reflection, translation,
permutation) and e3nn's ``equivariance_error`` as a second implementation, central finite
differences of the energy (forces) and of a homogeneous strain (virial), additivity of far-apart
systems, an explicit LAMMPS-style ghost-atom copy of a periodic cell, separate evaluation of
batched graphs, the eager model for TorchScript and for the exported file. Units: Å, eV, eV/Å.
Needs pytest (the ``test`` extra) for ``EnergyModelBattery``.
"""

from gnnff.testing.battery import ALL_CHECKS, EnergyModelBattery, run_all
from gnnff.testing.contract import (
    check_export,
    check_per_type_parameters,
    check_torchscript,
    load_exported_file,
)
from gnnff.testing.derivatives import (
    check_forces_finite_difference,
    check_virial_finite_strain,
)
from gnnff.testing.helpers import (
    FD_RTOL,
    FD_STEP,
    RTOL,
    assert_close,
    evaluate,
    evaluate_atoms,
    graph_of,
    random_cluster,
    random_crystal,
    random_rotation,
    wigner_d,
)
from gnnff.testing.locality import (
    check_batching,
    check_cutoff_smoothness,
    check_ghost_atoms,
    check_separability,
)
from gnnff.testing.symmetry import (
    check_e3nn_equivariance,
    check_edge_feature_interface,
    check_permutation,
    check_rotation_reflection,
    check_translation,
)

__all__ = [
    "ALL_CHECKS",
    "FD_RTOL",
    "FD_STEP",
    "RTOL",
    "EnergyModelBattery",
    "assert_close",
    "check_batching",
    "check_cutoff_smoothness",
    "check_e3nn_equivariance",
    "check_edge_feature_interface",
    "check_export",
    "check_forces_finite_difference",
    "check_ghost_atoms",
    "check_per_type_parameters",
    "check_permutation",
    "check_rotation_reflection",
    "check_separability",
    "check_torchscript",
    "check_translation",
    "check_virial_finite_strain",
    "evaluate",
    "evaluate_atoms",
    "graph_of",
    "load_exported_file",
    "random_cluster",
    "random_crystal",
    "random_rotation",
    "run_all",
    "wigner_d",
]

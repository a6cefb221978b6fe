"""Data-generation engines by name (``DatasetPlan.engine`` in datagen/catalog.py).

An engine is a class registered with ``@register_engine(name)``; ``engine(name)`` returns an
instance. It answers three questions for the generator:

* ``run(task) -> Iterable[Dict]``: one trajectory (a datagen.tasks.TrajectoryTask), a frame
  dict every ``task.interval_steps`` (keys as lammps_engine.LammpsSystem.frame: positions Å,
  cell Å, numbers, pbc, energy eV, forces eV/Å, stress eV/Å^3 ASE sign or None, info);
* ``card(params) -> Dict``: the data card's "engine" entry (name, version, method or potential);
* ``integrator(plan) -> str``: the data card's description of the MD.

Engines run in worker processes (spawned): keep heavy imports (lammps, tblite) inside methods,
so that listing engines needs neither. Unknown names get the closest registered one.
"""

from typing import List

from gnnff.registry import Registry

_ENGINES = Registry(
    "data-generation engine", ["gnnff.datagen.lammps_engine", "gnnff.datagen.xtb_engine"]
)


def register_engine(name: str):
    """Decorator: make an engine class available as ``DatasetPlan(engine=NAME, ...)``."""
    return _ENGINES.register(name)


def available_engines() -> List[str]:
    return _ENGINES.names()


def engine(name: str):
    """An instance of the engine registered under ``name``."""
    return _ENGINES.builder(name)()

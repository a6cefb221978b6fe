"""The standalone model file written in docs/model_contract.md runs in pair_style gnnff and
reproduces LAMMPS's native lj/cut (same epsilon, sigma, unshifted cutoff) on 1 and 2 ranks.

The example's code is taken from the document itself (between the example markers), so the
page cannot drift away from what works. Truth: lj/cut. Units metal (eV, Å, eV/Å); pressure in
bar from LAMMPS on both sides.
"""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from parity_helpers import read_dump

DOC = Path(__file__).resolve().parents[2] / "docs" / "model_contract.md"
EPS, SIGMA, CUT = 0.0104, 3.4, 6.5

DECK = """\
units metal
lattice fcc 5.3
region b block 0 3 0 3 0 3
create_box 1 b
create_atoms 1 box
mass 1 39.95
displace_atoms all random 0.2 0.2 0.2 4711
pair_style {pair_style}
pair_coeff {pair_coeff}
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
thermo_modify format float %.15g
dump d all custom 1 forces.dump id fx fy fz
run 0
"""


def example_module(folder):
    """The example block as an importable module (TorchScript reads the source of classes)."""
    text = DOC.read_text()
    block = re.search(
        r"<!-- example:begin -->\n```python\n(.*?)```\n<!-- example:end -->", text, re.S
    )
    assert block, "the example block of docs/model_contract.md is missing"
    path = folder / "contract_example.py"
    path.write_text(block.group(1))
    spec = importlib.util.spec_from_file_location("contract_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("nprocs", [1, 2])
def test_contract_example_matches_lj_cut(run_lammps, tmp_path, nprocs):
    example_module(tmp_path).save(str(tmp_path / "example.pt"), epsilon=EPS, sigma=SIGMA, r_max=CUT)
    gnnff = run_lammps(
        DECK.format(pair_style="gnnff", pair_coeff="* * example.pt Ar"), tmp_path, nprocs=nprocs
    )
    f_gnnff = read_dump(tmp_path / "forces.dump")
    native = run_lammps(
        DECK.format(pair_style=f"lj/cut {CUT}", pair_coeff=f"* * {EPS} {SIGMA}"),
        tmp_path,
        nprocs=nprocs,
    )
    f_native = read_dump(tmp_path / "forces.dump")
    a, b = gnnff.thermo()[0], native.thermo()[0]
    assert abs(b["PotEng"][0]) > 0.5
    for col in ("PotEng", "Press", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz"):
        np.testing.assert_allclose(
            a[col], b[col], rtol=1e-10, atol=1e-10 * abs(b["Press"][0]), err_msg=col
        )
    for c in ("fx", "fy", "fz"):
        np.testing.assert_allclose(f_gnnff[c], f_native[c], rtol=0, atol=1e-10, err_msg=c)

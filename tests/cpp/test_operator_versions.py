"""A file exported by a newer gnnff may call a gnnff operator that an older build lacks: both
loaders (the C++ one of pair_style gnnff and gnnff._core, and Python's) say so and name the fix,
instead of calling the file unreadable."""

import os
import zipfile

import pytest

from gnnff.export import export_model, load_exported
from gnnff.models.registry import build_model


def file_calling_an_unknown_operator(folder) -> str:
    """pair_mlp exported with the compiled moment sums, its code renamed to an operator that no
    build has (same length, so the archive's debug ranges stay valid)."""
    good = os.path.join(folder, "good.pt")
    export_model(build_model("pair_mlp", type_names=["Si"], r_max=3.0).double(), good)
    bad = os.path.join(folder, "newer.pt")
    renamed = 0
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".py") and b"gnnff.outer_index_add" in data:
                data = data.replace(b"gnnff.outer_index_add", b"gnnff.outer_index_adq")
                renamed += 1
            dst.writestr(info, data)
    if not renamed:
        pytest.fail("pair_mlp was exported without gnnff::outer_index_add (operators not loaded?)")
    return bad


def test_cpp_loader_names_a_missing_operator(core, tmp_path):
    path = file_calling_an_unknown_operator(tmp_path)
    with pytest.raises(Exception, match="calls a gnnff operator that this build of gnnff lacks"):
        core.Model(path, "cpu")


def test_python_loader_names_a_missing_operator(tmp_path):
    path = file_calling_an_unknown_operator(tmp_path)
    with pytest.raises(ValueError, match="or one older than the file") as err:
        load_exported(path)
    assert "outer_index_adq" in str(err.value) and "GNNFF_KERNELS=0" in str(err.value)

import ase.io
import pytest
import torch
from training_helpers import emt_structures


@pytest.fixture(scope="session")
def emt_file(tmp_path_factory):
    """24 EMT-labelled Cu/Al cells of 8 atoms (extxyz)."""
    path = tmp_path_factory.mktemp("emt") / "cu_al.extxyz"
    ase.io.write(path, emt_structures(24))
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

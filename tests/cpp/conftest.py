"""Load the compiled gnnff._core from the installed package.

pytest imports gnnff from the source tree (pythonpath=python), which has no compiled module, so
the installed copy (pip install --no-build-isolation .) is loaded by file path.
"""

import importlib.util
import sys
from importlib import metadata

import pytest


def load_installed_core():
    try:
        import gnnff._core as core  # works when the installed gnnff comes first on sys.path

        return core
    except ImportError:
        pass
    try:
        files = metadata.distribution("gnnff").files or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name.startswith("_core.") and f.name.endswith(".so"):
            spec = importlib.util.spec_from_file_location("gnnff._core", str(f.locate()))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["gnnff._core"] = module
            return module
    return None


@pytest.fixture(scope="session")
def core():
    import torch  # noqa: F401  (loads libtorch with the same libraries _core links)

    module = load_installed_core()
    if module is None:
        pytest.fail("gnnff._core is not installed; run `pip install --no-build-isolation -v .`")
    return module

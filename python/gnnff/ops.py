"""gnnff's compiled torch operators (``torch.ops.gnnff.*``, cpp/src/ops/): load them, and say
whether the models should use them.

``libgnnff_ops.so`` is built with the package (next to ``gnnff/_core*.so`` in site-packages).
The LAMMPS plugin and ``gnnff._core`` link it; Python loads it here, before a model is built or
an exported file is read. Without it (a source tree that was never built) the models keep their
pure-torch forms, which compute the same numbers more slowly.

``GNNFF_KERNELS=0`` in the environment, or ``use_kernels(False)``, builds models without the
operators (AOTInductor export does, and tests use it for the reference form).
"""

import contextlib
import os
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Iterator, Optional

import torch

LIBRARY = "libgnnff_ops.so"
_loaded: Optional[bool] = None
_enabled_override: Optional[bool] = None


def _library_paths() -> Iterator[Path]:
    yield Path(__file__).resolve().parent / LIBRARY  # installed package
    try:  # a source checkout on sys.path before the installed package (pytest's pythonpath)
        yield Path(metadata.distribution("gnnff").locate_file(f"gnnff/{LIBRARY}")).resolve()
    except metadata.PackageNotFoundError:
        return


def load() -> bool:
    """Register gnnff's operators with torch (once); False when the library is not built."""
    global _loaded
    if _loaded is None:
        # e.g. gnnff._core or the LAMMPS plugin loaded it already (the newest operator: an older
        # library loaded first lacks it, and the models then keep the torch form)
        _loaded = _has_newest_operators() or _load_first(_library_paths())
    return _loaded


def _has_newest_operators() -> bool:
    """Whether the operators registered now include the newest form (trilinear's indexed
    operand, operator set version 4)."""
    if not hasattr(torch.ops.gnnff, "trilinear"):
        return False
    return "b_index" in str(torch.ops.gnnff.trilinear.default._schema)


def _load_first(paths) -> bool:
    """Load the first library file of ``paths`` that exists. One that exists but cannot be
    loaded (built against another torch, say) is reported and the models keep the torch form,
    so a broken native part slows gnnff down instead of stopping it."""
    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            torch.ops.load_library(str(path))
            return True
        except (OSError, RuntimeError) as err:
            warnings.warn(
                f"gnnff could not load its compiled operators from {path} ({err}); models use "
                "the slower pure-torch form. Rebuild gnnff against this torch: "
                "`bash scripts/setup.sh` (or `pip install --no-build-isolation .`)",
                stacklevel=2,
            )
            return False
    return False


def kernels_enabled() -> bool:
    """Whether models built now call the compiled operators (on CPU tensors)."""
    if _enabled_override is not None:
        return _enabled_override and load()
    if os.environ.get("GNNFF_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return load()


@contextlib.contextmanager
def without_kernels(model: torch.nn.Module):
    """Run a built model's modules in their pure-torch form inside this block (eager only; a
    scripted model keeps the form it was scripted with). AOTInductor export traces this form."""
    switched = [m for m in model.modules() if getattr(m, "use_kernel", False)]
    for m in switched:
        m.use_kernel = False
    try:
        yield model
    finally:
        for m in switched:
            m.use_kernel = True


def explain_missing_operator(err: Exception, path: str) -> Optional[str]:
    """The error to show when an exported file calls a gnnff operator that is not registered."""
    text = str(err)
    if "gnnff::" not in text and "torch.ops.gnnff" not in text:
        return None
    names = ", ".join(sorted(set(re.findall(r"gnnff::\w+", text)))) or "torch.ops.gnnff"
    return (
        f"{path!r} calls gnnff's compiled operators ({names}), which are not loaded: "
        f"this gnnff has no {LIBRARY} "
        "(a source tree that was never built), or one older than the file (an operator added "
        "since). Install gnnff with its native part (`bash scripts/setup.sh`, or `pip install "
        "--no-build-isolation .`), or re-export the model with GNNFF_KERNELS=0 for a file "
        "that needs only torch"
    )


@contextlib.contextmanager
def use_kernels(enabled: bool):
    """Build models with (True) or without (False) the compiled operators inside this block."""
    global _enabled_override
    before, _enabled_override = _enabled_override, enabled
    try:
        yield
    finally:
        _enabled_override = before

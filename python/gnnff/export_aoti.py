"""AOTInductor export: a ForceModel compiled ahead of time into a ``.pt2`` package.

    export_aoti(model, "model.pt2")                  # `gnnff export CKPT -o model.pt2 --format aoti`
    module, metadata = load_aoti("model.pt2")        # called like the TorchScript file

The package holds the same metadata as the TorchScript file (gnnff/contract.py) in its metadata
map, and one positional function (contract.AOTI_INPUTS -> contract.AOTI_OUTPUTS) for one graph:

    (pos (N,3), atom_type (N,), edge_index (2,E), edge_shift (E,3), num_local (1,))
        -> (total_energy (1,), atomic_energy (N,), forces (N,3), virial (1,3,3), atom_virial (N,3,3))

N and E are dynamic (N >= 2, E >= 2). How: ``make_fx`` traces ForceModel.forward, its autograd
gradient included, into an aten graph with symbolic sizes (``torch.export`` cannot trace the
``torch.autograd.grad`` inside forward by itself), ``torch.export`` turns that graph into an
ExportedProgram with ``Dim``s for N and E, and ``aoti_compile_and_package`` compiles it with the
host C++ compiler for the CPU. TorchScript stays the default format; docs/model_contract.md.
"""

import os
from typing import Dict, List, Optional, Tuple

import torch

from gnnff import contract, keys, ops
from gnnff.atomic_file import atomic_path
from gnnff.export import prepare_for_export
from gnnff.model_io import model_dtype

__all__ = ["AotiModel", "export_aoti", "is_aoti_package", "load_aoti"]

INPUTS = (keys.POSITIONS, keys.ATOM_TYPE, keys.EDGE_INDEX, keys.EDGE_SHIFT, keys.NUM_LOCAL)
OUTPUTS = (keys.TOTAL_ENERGY, keys.ATOMIC_ENERGY, keys.FORCES, keys.VIRIAL, keys.ATOM_VIRIAL)
assert " ".join(INPUTS) == contract.AOTI_INPUTS and " ".join(OUTPUTS) == contract.AOTI_OUTPUTS


class _Positional(torch.nn.Module):
    """The ForceModel called with the package's positional inputs, returning its outputs."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pos, atom_type, edge_index, edge_shift, num_local):
        data = dict(zip(INPUTS, (pos, atom_type, edge_index, edge_shift, num_local)))
        data[keys.REQUEST_ATOM_VIRIAL] = num_local
        out = self.model(data)
        return tuple(out[k] for k in OUTPUTS)


def _trace_inputs(model: torch.nn.Module, dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
    """A small random graph to trace with. Its sizes (N = 7 atoms, E > 8 edges, 5 local atoms)
    differ from each other and from the fixed sizes (3) so that tracing keeps N and E symbolic."""
    generator = torch.Generator().manual_seed(0)
    n = 7
    # atoms on a loose chain, every pair closer than r_max becomes an edge (both directions)
    pos = torch.rand(n, 3, generator=generator, dtype=torch.float64) * 0.4 * model.r_max
    pos[:, 0] += torch.arange(n, dtype=torch.float64) * 0.3 * model.r_max
    dist = torch.cdist(pos, pos)
    pairs = (dist < model.r_max) & ~torch.eye(n, dtype=torch.bool)
    edge_index = pairs.nonzero().T.contiguous()
    assert edge_index.shape[1] > 8 and edge_index.shape[1] != 2 * n
    n_types = len(model.type_names)
    atom_type = torch.arange(n) % n_types
    shift = torch.zeros(edge_index.shape[1], 3, dtype=dtype)
    return pos.to(dtype), atom_type, edge_index, shift, torch.tensor([n - 2])


def export_aoti(
    model: torch.nn.Module, path: str, lineage: Optional[Dict] = None
) -> Dict[str, str]:
    """Compile ``model`` (a ForceModel) into the AOTInductor package ``path`` (``.pt2``) with
    the contract's metadata; return the metadata. Raises ValueError for a model that cannot be
    traced or compiled, naming the reason; TorchScript (gnnff.export.export_model) still works."""
    from torch.fx.experimental.proxy_tensor import make_fx

    if not path.endswith(".pt2"):
        raise ValueError(f"an AOTInductor package is a .pt2 file, got {path!r}")
    dtype = model_dtype(model)
    metadata, was_training = prepare_for_export(model, path, lineage)
    metadata[contract.META_AOTI_INPUTS] = contract.AOTI_INPUTS
    metadata[contract.META_AOTI_OUTPUTS] = contract.AOTI_OUTPUTS
    positional = _Positional(model)
    example = _trace_inputs(model, dtype)
    atoms = torch.export.Dim("num_atoms", min=2)
    edges = torch.export.Dim("num_edges", min=2)
    dynamic = ({0: atoms}, {0: atoms}, {1: edges}, {0: edges}, None)
    stage = "tracing"
    try:
        # traced in the pure-torch form: Inductor compiles and fuses it itself, and the package
        # then needs no gnnff operator library at run time
        with ops.without_kernels(model):
            graph = make_fx(positional, tracing_mode="symbolic", _allow_non_fake_inputs=True)(
                *example
            )
        stage = "torch.export"
        program = torch.export.export(graph, example, dynamic_shapes=dynamic, strict=False)
        stage = "AOTInductor compilation"
        with atomic_path(path, "export", suffix=".pt2") as tmp:
            torch._inductor.aoti_compile_and_package(
                program, package_path=tmp, inductor_configs={"aot_inductor.metadata": metadata}
            )
    except Exception as err:  # torch raises many kinds; the message names the model and stage
        raise ValueError(
            f"model {model.model_name!r} cannot be exported with AOTInductor ({stage} failed: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); export it "
            "as TorchScript instead (`gnnff export CKPT -o model.pt`, the default format)"
        ) from err
    finally:
        model.train(was_training)
    return metadata


def is_aoti_package(path: str) -> bool:
    """A .pt2 archive written by AOTInductor (a zip with a ``data/aotinductor/`` folder)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("data/aotinductor/" in name for name in archive.namelist())


class AotiModel(torch.nn.Module):
    """A loaded package, called like an exported TorchScript ForceModel: a dict of inputs in, a
    dict of outputs out (one graph; EDGE_SHIFT zero and every atom local when absent; STRESS
    when CELL is given)."""

    one_graph_per_call = True  # gnnff eval evaluates with batch size 1

    def __init__(self, runner, metadata: Dict[str, object], device: torch.device):
        super().__init__()
        self.runner = runner
        self.metadata = metadata
        self.device = device

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        from gnnff.models.wrapper import stress_from_virial

        pos = data[keys.POSITIONS]
        if keys.BATCH in data and int(data[keys.NUM_GRAPHS].reshape(-1)[0]) != 1:
            raise ValueError(
                "an AOTInductor package evaluates one structure per call, this input is a "
                "batch of several; evaluate them one at a time (batch size 1)"
            )
        edge_index = data[keys.EDGE_INDEX]
        shift = data.get(keys.EDGE_SHIFT)
        if shift is None:
            shift = torch.zeros(edge_index.shape[1], 3, dtype=pos.dtype, device=pos.device)
        num_local = data.get(keys.NUM_LOCAL)
        if num_local is None:
            num_local = torch.tensor([pos.shape[0]], device=pos.device)
        args = (pos, data[keys.ATOM_TYPE], edge_index, shift, num_local.reshape(1))
        with torch.no_grad():
            values: List[torch.Tensor] = self.runner(*[a.contiguous() for a in args])
        out = dict(zip(OUTPUTS, values))
        if keys.CELL in data:
            out[keys.STRESS] = stress_from_virial(
                out[keys.VIRIAL], data[keys.CELL], data.get(keys.PBC)
            )
        return out


def load_aoti(path: str, device: str = "cpu") -> Tuple[AotiModel, Dict[str, object]]:
    """Load an AOTInductor package and its decoded metadata; clear errors for files that are not."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist; export one with `gnnff export`")
    if torch.device(device).type != "cpu":
        raise ValueError(
            f"{path!r} is compiled for the CPU (gnnff exports AOTInductor packages on the CPU); "
            "load it with device cpu, or use the TorchScript file on a GPU"
        )
    try:
        runner = torch._inductor.aoti_load_package(path)
        extra = runner.get_metadata()
    except Exception as err:
        raise ValueError(
            f"{path!r} is not a loadable AOTInductor package ({type(err).__name__}: {err}); "
            "re-export it with `gnnff export CKPT -o model.pt2 --format aoti` with this torch"
        ) from err
    source = repr(path)
    metadata = contract.parse_metadata(extra, source=source)
    for key, expected in (
        (contract.META_AOTI_INPUTS, contract.AOTI_INPUTS),
        (contract.META_AOTI_OUTPUTS, contract.AOTI_OUTPUTS),
    ):
        if extra.get(key) != expected:
            raise ValueError(
                f"{source} has {key} {extra.get(key)!r}, this gnnff calls packages with "
                f"{expected!r}; re-export it with `gnnff export --format aoti`"
            )
    return AotiModel(runner, metadata, torch.device(device)), metadata

"""Contract checks: TorchScript == eager, the gnnff.export round trip with its metadata, and
per-type parameters living only in ``*type_embedding*`` (fine-tuning remaps them by element)."""

from typing import Callable, List

import torch

from gnnff import keys
from gnnff.testing.helpers import (
    RTOL,
    assert_close,
    evaluate,
    graph_of,
    prepare,
    random_crystal,
)


def check_torchscript(model, dtype: torch.dtype):
    """torch.jit.script(model) gives the same energy, forces, virial as the eager model."""
    prepare(model, dtype)
    scripted = torch.jit.script(model)
    data = graph_of(model, random_crystal(model.type_names), dtype)
    eager = evaluate(model, data)
    script = evaluate(scripted, data)
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL, keys.ATOMIC_ENERGY):
        assert_close(script[key], eager[key], RTOL[dtype], f"TorchScript vs eager {key}")


def load_exported_file(path: str):
    """(module, metadata) of an exported file, as gnnff.export.load_exported does.

    Decodes the extra files itself: torch.jit.load returns them as bytes, which load_exported
    did not handle when this was written (requested fix in /work/notes/requests-2b.md).
    """
    from gnnff import contract, ops

    ops.load()  # exported models may call gnnff's compiled operators
    extra = {k: "" for k in contract.REQUIRED_KEYS}
    module = torch.jit.load(path, _extra_files=extra)
    extra = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in extra.items()}
    return module, contract.parse_metadata(extra, source=repr(path))


def check_per_type_parameters(build: Callable[[List[str]], torch.nn.Module]):
    """Only parameters named *type_embedding* depend on the number of types (fine-tuning remaps
    them by element name). ``build(type_names)`` returns a ForceModel."""
    torch.manual_seed(0)
    two = dict(build(["Si", "C"]).named_parameters())
    torch.manual_seed(0)
    three = dict(build(["Si", "C", "O"]).named_parameters())
    assert set(two) == set(three), "parameter names depend on the number of types"
    changed = [n for n in two if two[n].shape != three[n].shape]
    assert changed, "no parameter depends on the atom types: where are the type embeddings?"
    bad = [n for n in changed if "type_embedding" not in n]
    assert not bad, f"per-type parameters outside a *type_embedding* attribute: {bad}"


def check_export(model, path, dtype: torch.dtype = torch.float64):
    """gnnff.export round trip: metadata of the contract, and the loaded file == eager model."""
    from gnnff.export import export_model

    prepare(model, dtype)
    export_model(model, str(path), lineage={"test": "battery"})
    loaded, meta = load_exported_file(str(path))
    assert meta["r_max"] == model.r_max
    assert meta["interaction_range"] == model.interaction_range
    assert meta["type_names"] == list(model.type_names)
    assert meta["model_name"] == model.model_name
    assert meta["dtype"] == {torch.float64: "float64", torch.float32: "float32"}[dtype]
    data = graph_of(model, random_crystal(model.type_names), dtype)
    eager, scripted = evaluate(model, data), evaluate(loaded, data)
    for key in (keys.TOTAL_ENERGY, keys.FORCES, keys.VIRIAL):
        assert_close(scripted[key], eager[key], RTOL[dtype], f"exported model vs eager {key}")
    return meta

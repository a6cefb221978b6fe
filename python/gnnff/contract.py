"""The model contract: metadata stored inside every exported TorchScript file.

Metadata travel as TorchScript "extra files" (``torch.jit.save(..., _extra_files=...)``), one
plain-text value per key, so that the C++ loader (cpp/src/model.cpp) can read them with no JSON
parser. The keys are mirrored in ``cpp/include/gnnff/keys.h``. See docs/model_contract.md.
"""

from typing import Dict, List, Sequence

CONTRACT_VERSION = "1"
UNITS = "metal"  # LAMMPS units metal: eV, Å, ps; forces eV/Å

# extra-file names; every exported model has all of these
META_CONTRACT_VERSION = "gnnff/contract_version"
META_R_MAX = "gnnff/r_max"  # Å, neighbour cutoff the model was built with
META_INTERACTION_RANGE = "gnnff/interaction_range"  # Å, how far information travels
META_TYPE_NAMES = "gnnff/type_names"  # space-separated element names, index = atom type
META_DTYPE = "gnnff/dtype"  # float32 | float64
META_UNITS = "gnnff/units"  # metal
META_MODEL_NAME = "gnnff/model_name"  # e.g. allegro, nequip, gemnet_t, lennard_jones
META_LINEAGE = "gnnff/lineage"  # JSON text: checkpoints and data sets this model came from

REQUIRED_KEYS = (
    META_CONTRACT_VERSION,
    META_R_MAX,
    META_INTERACTION_RANGE,
    META_TYPE_NAMES,
    META_DTYPE,
    META_UNITS,
    META_MODEL_NAME,
    META_LINEAGE,
)

# optional: the layer-wise extension (docs/model_contract.md, *Layer-wise extension*). A file
# without these keys has no layer-wise form and still loads; one with them has the
# layerwise_* methods of gnnff.models.layerwise.LayerwiseForceModel.
LAYERWISE_VERSION = "1"
META_LAYERWISE = "gnnff/layerwise"  # LAYERWISE_VERSION when the file has the layer-wise methods
META_LAYER_FEATURE_DIMS = "gnnff/layer_feature_dims"  # space-separated D_0 .. D_L (node features)
OPTIONAL_KEYS = (META_LAYERWISE, META_LAYER_FEATURE_DIMS)

# optional: an AOTInductor package (.pt2, `gnnff export --format aoti`) carries the metadata
# above in its metadata map, plus its positional calling convention: input names and output
# names, each separated by spaces (docs/model_contract.md, *AOTInductor packages*)
META_AOTI_INPUTS = "gnnff/aoti_inputs"
META_AOTI_OUTPUTS = "gnnff/aoti_outputs"
AOTI_INPUTS = "pos atom_type edge_index edge_shift num_local"
AOTI_OUTPUTS = "total_energy atomic_energy forces virial atom_virial"

# the one map between dtype names (configs, checkpoints, model metadata) and torch dtypes
DTYPES = ("float32", "float64")


def torch_dtype(name: str):
    """torch dtype of a dtype name ("float32" | "float64"); a clear error for anything else."""
    import torch  # here, not at the top: reading metadata needs no torch

    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {name!r}")
    return getattr(torch, name)


def dtype_name(dtype) -> str:
    """Inverse of torch_dtype: torch.float64 -> "float64"; models compute in float32 or float64."""
    name = str(dtype).replace("torch.", "")
    if name not in DTYPES:
        raise ValueError(f"models compute in float32 or float64, this one is {dtype}")
    return name


def make_metadata(
    *,
    r_max: float,
    interaction_range: float,
    type_names: Sequence[str],
    dtype: str,
    model_name: str,
    lineage: str = "{}",
) -> Dict[str, str]:
    """Build the extra-files dict of an exported model, validating every value."""
    if not r_max > 0:
        raise ValueError(f"r_max must be positive (Å), got {r_max}")
    if interaction_range < r_max:
        raise ValueError(
            f"interaction_range ({interaction_range} Å) must be >= r_max ({r_max} Å): "
            "use r_max for a strictly local model, n_layers * r_max for message passing"
        )
    names: List[str] = list(type_names)
    if not names or any((not n) or (" " in n) for n in names):
        raise ValueError(f"type_names must be non-empty names without spaces, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"type_names must be unique, got {names}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return {
        META_CONTRACT_VERSION: CONTRACT_VERSION,
        META_R_MAX: repr(float(r_max)),
        META_INTERACTION_RANGE: repr(float(interaction_range)),
        META_TYPE_NAMES: " ".join(names),
        META_DTYPE: dtype,
        META_UNITS: UNITS,
        META_MODEL_NAME: model_name,
        META_LINEAGE: lineage,
    }


def check_type_names(names: Sequence[str], source: str = "model") -> List[str]:
    """Refuse a model's type_names that are empty or repeat a name (index = ATOM_TYPE value)."""
    names = list(names)
    if not names:
        raise ValueError(
            f"{source} lists no element names (gnnff/type_names is blank); "
            "re-export it from a model built with type_names"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"{source} repeats {repeated} in its type_names {names}; each atom type "
            "index needs its own name, re-export it with unique type_names"
        )
    return names


def layerwise_metadata(feature_dims: Sequence[int]) -> Dict[str, str]:
    """The optional keys of a file with the layer-wise methods; feature_dims = D_0 .. D_L."""
    dims = [int(d) for d in feature_dims]
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"layer-wise feature dims need D_0 .. D_L (L >= 1), all >= 1, got {dims}")
    return {META_LAYERWISE: LAYERWISE_VERSION, META_LAYER_FEATURE_DIMS: " ".join(map(str, dims))}


def parse_layerwise(extra_files: Dict[str, str], source: str = "model") -> List[int]:
    """D_0 .. D_L of a file with the layer-wise extension, [] for a file without it."""
    version = extra_files.get(META_LAYERWISE) or ""
    if not version:
        return []
    if version != LAYERWISE_VERSION:
        raise ValueError(
            f"{source} has layer-wise extension version {version}, this gnnff reads "
            f"version {LAYERWISE_VERSION}; re-export it with this gnnff"
        )
    try:
        return [int(d) for d in (extra_files.get(META_LAYER_FEATURE_DIMS) or "").split()]
    except ValueError as err:
        raise ValueError(
            f"{source} has an unreadable {META_LAYER_FEATURE_DIMS}; re-export it"
        ) from err


def parse_metadata(extra_files: Dict[str, str], source: str = "model") -> Dict[str, object]:
    """Check and decode metadata read from a TorchScript file (inverse of make_metadata)."""
    missing = [k for k in REQUIRED_KEYS if not extra_files.get(k)]
    if missing:
        raise ValueError(
            f"{source} is a TorchScript file without gnnff metadata (missing {missing}); "
            "export it with `gnnff export CHECKPOINT -o model.pt`"
        )
    if extra_files[META_CONTRACT_VERSION] != CONTRACT_VERSION:
        raise ValueError(
            f"{source} follows model contract version {extra_files[META_CONTRACT_VERSION]}, "
            f"this gnnff reads version {CONTRACT_VERSION}; re-export it with this gnnff"
        )
    return {
        "contract_version": extra_files[META_CONTRACT_VERSION],
        "r_max": float(extra_files[META_R_MAX]),
        "interaction_range": float(extra_files[META_INTERACTION_RANGE]),
        "type_names": check_type_names(extra_files[META_TYPE_NAMES].split(), source),
        "dtype": extra_files[META_DTYPE],
        "units": extra_files[META_UNITS],
        "model_name": extra_files[META_MODEL_NAME],
        "lineage": extra_files[META_LINEAGE],
        "layer_feature_dims": parse_layerwise(extra_files, source),  # [] = no layer-wise form
    }

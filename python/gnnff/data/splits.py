"""Train/validation/test splits by fraction (seeded permutation) or by index files.

Index files hold one integer per line (or a .npy array) indexing the structures of ``data.train``
in file order. The same seed and the same data give the same split on every machine: the
permutation comes from ``numpy.random.default_rng(seed)``, independent of any global RNG.
"""

from typing import Dict, Optional

import numpy as np


def read_index_file(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        values = np.load(path)
    else:
        values = np.loadtxt(path, dtype=np.int64, ndmin=1)
    return np.asarray(values, dtype=np.int64).reshape(-1)


def split_indices(
    num_structures: int,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    seed: int = 0,
    index_files: Optional[Dict[str, str]] = None,
) -> Dict[str, np.ndarray]:
    """Indices of the ``train``/``val``/``test`` structures of a data set of ``num_structures``.

    With ``index_files`` (split name -> path) those splits are read; every structure not in a
    given split goes to ``train`` unless a train file is given too. Otherwise a seeded
    permutation is cut by fraction: test first, then validation, the rest is training.
    """
    index_files = {k: v for k, v in (index_files or {}).items() if v}
    if index_files:
        splits = {name: read_index_file(path) for name, path in index_files.items()}
        for name, idx in splits.items():
            bad = idx[(idx < 0) | (idx >= num_structures)]
            if len(bad):
                raise ValueError(
                    f"index file for {name} ({index_files[name]}) has indices {bad[:5].tolist()} outside "
                    f"0..{num_structures - 1}; indices count structures of data.train from 0"
                )
        if "train" not in splits:
            used = np.concatenate([v for v in splits.values()]) if splits else np.array([], int)
            splits["train"] = np.setdiff1d(np.arange(num_structures), used)
        names = list(splits)
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                common = np.intersect1d(splits[names[a]], splits[names[b]])
                if len(common):
                    raise ValueError(
                        f"splits {names[a]} and {names[b]} share structures {common[:5].tolist()}; index files must not overlap"
                    )
        return splits
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"data.{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves no training data"
        )
    order = np.random.default_rng(seed).permutation(num_structures)
    n_test = int(round(test_fraction * num_structures))
    n_val = int(round(val_fraction * num_structures))
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }

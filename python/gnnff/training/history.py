"""Per-epoch training log written as metrics.csv and metrics.json in output.dir.

The rows live in the checkpoint too, and both files are rewritten (atomically) from them after
every epoch, so a resumed run has exactly one row per epoch. Columns are the union of all keys
(terms that appear later, e.g. per-layer decorrelation values, add columns).
"""

import csv
import json
import os
from typing import Dict, List

from gnnff.atomic_file import atomic_path


def _atomic_write(path: str, text: str) -> None:
    with atomic_path(path, "log") as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)


def write_history(rows: List[Dict[str, float]], folder: str) -> None:
    columns: List[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    _atomic_write(os.path.join(folder, "metrics.json"), json.dumps(rows, indent=1))
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(os.path.join(folder, "metrics.csv"), buffer.getvalue())


def read_history(folder: str) -> List[Dict[str, float]]:
    with open(os.path.join(folder, "metrics.json")) as handle:
        return json.load(handle)

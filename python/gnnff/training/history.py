"""Per-epoch training log written as metrics.csv and metrics.json in output.dir.

The rows live in the checkpoint too, and both files are rewritten (atomically) from them after
every epoch, so a resumed run has exactly one row per epoch. Columns are the union of all keys
(terms that appear later, e.g. per-layer decorrelation values, add columns).
"""

import csv
import json
import os
import tempfile
from typing import Dict, List


def _atomic_write(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gnnff-log-", dir=folder)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


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

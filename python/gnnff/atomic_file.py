"""Files written so that a kill at any moment leaves the old file or the new one, never half of one.

    with atomic_path("run/last.pt", "ckpt") as tmp:
        torch.save(state, tmp)          # write the temporary file; it replaces run/last.pt on success

The temporary file is a hidden sibling named ``.gnnff-<kind>-<host>-<pid>-<random>``; a process
killed while writing leaves it behind, and :func:`remove_stale_temp_files` removes the ones whose
writer is gone (the trainer calls it at start-up and on resume). The finished file gets the mode
an ordinary ``open()`` would give it (0666 minus the umask): mkstemp creates 0600, which would
keep checkpoints and models from colleagues sharing a folder.
"""

import contextlib
import os
import re
import socket
import tempfile
import time
from typing import Iterator, List

PREFIX = ".gnnff-"
KINDS = ("ckpt", "export", "log")
# files of older gnnff versions carried no host/pid: .gnnff-ckpt-XXXX.pt
_NAME = re.compile(r"^\.gnnff-(?:%s)-(?:(?P<host>[A-Za-z0-9.-]+)-(?P<pid>\d+)-)?" % "|".join(KINDS))
# a temp file of another host cannot be checked for a live writer: stale only after this long
OTHER_HOST_STALE_S = 24 * 3600.0


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname()) or "host"


def file_mode() -> int:
    """Mode of a new file under the current umask (what open() would create)."""
    umask = os.umask(0o022)  # the only portable way to read the umask is to set it and restore it
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str, kind: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (same umask-based
    mode as a plain open()); on an error it is removed and ``path`` is untouched."""
    if kind not in KINDS:
        raise ValueError(f"temporary-file kind must be one of {KINDS}, got {kind!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"cannot write {path!r}: folder {folder!r} does not exist; create it first"
        )
    fd, tmp = tempfile.mkstemp(
        prefix=f"{PREFIX}{kind}-{_host()}-{os.getpid()}-", suffix=suffix, dir=folder
    )
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a live process of another user
        return True
    return True


def remove_stale_temp_files(folder: str) -> List[str]:
    """Remove our temporary files in ``folder`` whose writing process is gone; return their names."""
    if not os.path.isdir(folder):
        return []
    removed = []
    host, now = _host(), time.time()
    for name in sorted(os.listdir(folder)):
        match = _NAME.match(name)
        path = os.path.join(folder, name)
        if not match or not os.path.isfile(path):
            continue
        if match.group("pid") is not None:
            pid = int(match.group("pid"))
            if match.group("host") == host:
                if pid == os.getpid() or _writer_alive(pid):  # being written right now
                    continue
            elif now - os.path.getmtime(path) < OTHER_HOST_STALE_S:
                continue
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed

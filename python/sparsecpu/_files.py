"""Writing files the user asked for without ever leaving one half-written."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from typing import Callable


def write_beside(path: str, write: Callable[[str], None]) -> None:
    """write(staged) writes the file (and any companions, e.g. `<name>.data`) under the final name in a
    temporary folder beside `path`; the files then replace their targets, companions first, with the
    permissions a plain open() would give (an existing target's own, else 0666 less the umask)."""
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder; expected a file path")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"{path}: not writable; not replaced")
    staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        write(os.path.join(staging, name))
        # The file itself last: each rename is atomic, the pair is not (a crash in between leaves
        # the new companion beside the old file).
        written = sorted(os.listdir(staging), key=lambda f: f == name)
        for file in written:
            target = os.path.join(folder, file)
            if os.path.exists(target):  # else the staged file has what open() gave it already
                os.chmod(os.path.join(staging, file), stat.S_IMODE(os.stat(target).st_mode))
            os.replace(os.path.join(staging, file), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

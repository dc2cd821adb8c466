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
    staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        write(os.path.join(staging, name))
        written = sorted(os.listdir(staging), key=lambda f: f == name)  # the file itself last
        for file in written:
            target = os.path.join(folder, file)
            os.chmod(os.path.join(staging, file), _mode_for(target))
            os.replace(os.path.join(staging, file), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _mode_for(target: str) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask

"""Output folders and files: checked before anything is measured, created without clobbering.

A bad `--out` (under a regular file, in a read-only folder, a name the file system refuses)
is reported as one line before any work, and nothing is written; results are written whole
(temporary file, then rename) so a crash never leaves half a file that a reader chokes on.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .errors import UserError


def check_writable_folder(path: Path, option: str = "--out") -> None:
    """Raise UserError unless `path` is a folder we may write in, or one we could create.
    Touches nothing."""
    path = Path(path)
    name_max = os.pathconf("/", "PC_NAME_MAX")
    for name in path.parts:
        if len(os.fsencode(name)) > name_max:  # stat() itself fails on such a name
            raise UserError(f"{option}: the name {name[:24]}... is {len(os.fsencode(name))} bytes long; "
                            f"the file system allows {name_max}")
    existing = path
    try:
        while not existing.exists():
            if existing.parent == existing:
                break
            existing = existing.parent
    except OSError as e:
        raise UserError(f"{option} {path}: {e.strerror}") from None
    if not existing.is_dir():
        what = "it" if existing == path else existing
        raise UserError(f"{option} {path}: {what} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: {existing} is not writable")


def claim_new_folder(parent: Path, name: str) -> Path:
    """Create PARENT/NAME-TIMESTAMP and return it; `-2`, `-3`... are added when that folder
    exists, so two runs started in the same second never share a folder (mkdir is atomic)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name.replace(".py:", "-")).strip("-.") or "run"
    stem = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    Path(parent).mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = Path(parent) / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"{parent}: could not find a free folder name for {stem}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write the whole file or nothing: a reader never sees a truncated one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)

"""Which code, library versions and machine produced a bench record."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy

from ..threads import threads_in_effect
from ..version import __version__


@dataclass(frozen=True)
class Provenance:
    commit: str | None  # git commit of the source tree the package was imported from; None: not a checkout
    dirty: bool | None  # uncommitted changes in that package's files; None: not a checkout
    versions: dict
    cpu: str
    llvm_cpu: str
    target: dict
    tvm_threads: int | None = None  # threads TVM's runtime ran kernels on (None: TVM's default)

    def as_dict(self) -> dict:
        return asdict(self)


def _git(package_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(package_dir), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):  # no git: the same as no checkout
        return None
    return done.stdout if done.returncode == 0 else None


def source_tree_state(package_dir: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding the imported package, or (None, None).

    The package's own files must be tracked: a copy installed into a venv that happens to lie
    inside a checkout (`pip install .` puts one in .venv/) is not that checkout's code. Dirty
    counts changes and untracked files under the package only: a bench writing its results into
    the same repository (docs/results/) must not mark its own later records dirty."""
    package_dir = Path(__file__).resolve().parents[1] if package_dir is None else package_dir
    if _git(package_dir, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None, None
    commit = _git(package_dir, "rev-parse", "HEAD")
    status = _git(package_dir, "status", "--porcelain", "--", ".")
    if commit is None or status is None:
        return None, None
    return commit.strip(), bool(status.strip())


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict:
    import tvm  # TVM: loaded on use (seconds to import)

    versions = {"shared_mcts": __version__, "tvm": tvm.__version__, "numpy": numpy.__version__,
                "python": platform.python_version()}
    # torch is only looked up, not imported: importing it takes seconds and memory.
    if importlib.util.find_spec("torch") is not None:
        versions["torch"] = _distribution_version("torch") or "unknown"
    return versions


def collect_provenance(target: dict, cpu_model: str) -> Provenance:
    commit, dirty = source_tree_state()

    return Provenance(commit=commit, dirty=dirty, versions=package_versions(), cpu=cpu_model,
                      llvm_cpu=str(target.get("mcpu", "generic")), target=dict(target), tvm_threads=threads_in_effect())

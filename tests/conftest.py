import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def target():
    from shared_mcts.hardware import detect_target

    return detect_target()


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from shared_mcts.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")

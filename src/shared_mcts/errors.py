"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input (unknown workload, malformed file, invalid target...).

    Raised anywhere below the CLI; the CLI turns it into one line on stderr and exit code 2,
    so that no traceback reaches a user for a mistake that is theirs to fix. `argument` names
    the Python argument at fault (e.g. "target", "wall_clock_s"): the library's message starts
    with it, and the CLI says its own option instead (`--target`, `--time-limit`).
    """

    def __init__(self, message: str, argument: str | None = None):
        self.argument, self.problem = argument, message
        super().__init__(f"{argument} {message}" if argument else message)


class DeviceUnavailable(RuntimeError):
    """The measuring device is gone (an RPC server no longer registered with its tracker).

    Not the candidate's fault, so the candidate is not recorded as failed: `results` holds the
    measurements finished before the loss, in candidate order, so that they are recorded and
    nothing already measured is lost; the run stops and can be resumed when the device is back.
    """

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = list(results or [])


def last_line(error: object, limit: int = 300, empty: str = "") -> str:
    """The last non-empty line of an error or of a process's output, capped: TVM, Python and
    child processes put the line that says what went wrong last, after the traceback."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()[:limit]
    return empty or (type(error).__name__ if isinstance(error, BaseException) else "")

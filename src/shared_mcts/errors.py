"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input (unknown workload, malformed file, invalid target...).

    Raised anywhere below the CLI; the CLI turns it into one line on stderr and exit code 2,
    so that no traceback reaches a user for a mistake that is theirs to fix.
    """


class DeviceUnavailable(RuntimeError):
    """The measuring device is gone (an RPC server no longer registered with its tracker).

    Not the candidate's fault, so the candidate is not recorded as failed: `results` holds the
    measurements finished before the loss, in candidate order, so that they are recorded and
    nothing already measured is lost; the run stops and can be resumed when the device is back.
    """

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = list(results or [])

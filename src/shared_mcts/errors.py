"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input (unknown workload, malformed file, invalid target...).

    Raised anywhere below the CLI; the CLI turns it into one line on stderr and exit code 2,
    so that no traceback reaches a user for a mistake that is theirs to fix.
    """

"""One error family, mapped to the exit codes of DESIGN.md in one place (mlops.cli)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class MlopsError(Exception):
    """Base class: the message is one line saying what, where and how to fix."""

    exit_code = EXIT_UNEXPECTED


class BadInput(MlopsError):
    """Bad usage, bad config or bad input. Nothing may have been changed on disk."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, where: str, problem: str, fix: str | None = None):
        self.where = where
        self.problem = problem
        self.fix = fix
        msg = f"{where}: {problem}" if where else problem
        if fix:
            msg += f"; {fix}"
        super().__init__(msg)

    @classmethod
    def unreadable(cls, where: str, exc: OSError, fix: str, what: str = "the file") -> BadInput:
        """The one line for a file the OS refuses to read: permission denied, or the OS's own reason."""
        if isinstance(exc, PermissionError):
            return cls(where, "cannot be read (permission denied)", f"fix {what}'s permissions")
        return cls(where, f"cannot be read ({exc.strerror or exc})", fix)


class CheckFailed(MlopsError):
    """The check a command exists to enforce failed (data invalid, log tampered, gate refused)."""

    exit_code = EXIT_CHECK_FAILED

"""User-facing errors: the CLI prints them as one line, never as a traceback."""

from __future__ import annotations


class BondhuError(Exception):
    """An error whose message is complete on its own and is shown to the user as is."""

    exit_code = 1


class DataError(BondhuError):
    """Bad input data, located as ``FILE:LINE: field: reason``."""

    exit_code = 2

    def __init__(self, file: str, line: int | None, field: str, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {field}: {reason}")


class ConfigError(BondhuError):
    """A config file or override that does not validate."""

    exit_code = 2

"""The one exception type for bad user input: the CLI prints it as one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a file, a field, a name, a number): message is shown to the user as is.

    Messages name where (file:line, field path) and what is wrong, and suggest the fix.
    """

    exit_code = 2


def unknown_name(kind: str, name: str, valid: list[str]) -> UserError:
    """Error for an unknown registry or catalog name, listing the valid names."""
    return UserError(f"unknown {kind} '{name}'; valid {kind} names: {', '.join(sorted(valid))}")

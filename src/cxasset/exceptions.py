"""The errors cxasset raises.

::

    CxassetError
     ├── BookError(ValueError)           a book cannot be read or is invalid
     │    └── SchemaError                 a table breaks the data contract (names table, column, rows)
     ├── WorkspaceError(RuntimeError)    a workspace is missing, empty or not a cxasset workspace
     └── NotFittedError(ValueError, AttributeError)

    CxassetWarning(UserWarning)
     └── BookWarning                     suspicious but legal data (ingest goes on)

The CLI turns any ``CxassetError`` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations


class CxassetError(Exception):
    """Root of every error cxasset raises on purpose."""


class BookError(CxassetError, ValueError):
    """A customer book cannot be read, or breaks the data contract."""


class SchemaError(BookError):
    """One or more tables of a book break the data contract.

    ``problems`` holds every problem found (validation does not stop at the first), each a
    :class:`cxasset.book.validate.Problem` naming the table, column, offending row count and examples.
    """

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class WorkspaceError(CxassetError, RuntimeError):
    """A workspace is missing, empty, or not a cxasset workspace."""


class NotFittedError(CxassetError, ValueError, AttributeError):
    """A model method that needs a fit was called before ``fit``."""


class CxassetWarning(UserWarning):
    """Root of the warnings cxasset issues."""


class BookWarning(CxassetWarning):
    """Suspicious but legal data in a book; ingest goes on."""

"""The errors cxasset raises.

::

    CxassetError
     ├── BookError(ValueError)           a book cannot be read or is invalid
     │    └── SchemaError                 a table breaks the data contract (names table, column, rows)
     ├── WorkspaceError(RuntimeError)    a workspace is missing, empty or not a cxasset workspace
     ├── ModelDataError(ValueError)      data a model cannot be fitted on (degenerate, collinear, ...)
     ├── ConvergenceError(RuntimeError)  a fit failed; the message is a checklist of remedies
     └── NotFittedError(ValueError, AttributeError)

    CxassetWarning(UserWarning)
     ├── BookWarning                     suspicious but legal data (ingest goes on)
     └── ConvergenceWarning(RuntimeWarning)  a fit ended without meeting its convergence test

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


class ModelDataError(CxassetError, ValueError):
    """Data a model cannot be fitted on: degenerate, collinear, missing columns."""


class ConvergenceError(CxassetError, RuntimeError):
    """A fit failed to converge; the message lists what to check, in order."""


class NotFittedError(CxassetError, ValueError, AttributeError):
    """A model method that needs a fit was called before ``fit``."""


class CxassetWarning(UserWarning):
    """Root of the warnings cxasset issues."""


class BookWarning(CxassetWarning):
    """Suspicious but legal data in a book; ingest goes on."""


class ConvergenceWarning(CxassetWarning, RuntimeWarning):
    """A fit ended without meeting its convergence test; the message lists remedies."""

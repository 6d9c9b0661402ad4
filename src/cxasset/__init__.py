"""cxasset: the Customer Asset Model.

Customer data in; customer lifetime value, customer equity, the CX levers that move it and the
forecast return of CX investments out. The pipeline, one subpackage per stage::

    book -> features -> models -> valuation -> valuemap -> levers -> scenarios -> report
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

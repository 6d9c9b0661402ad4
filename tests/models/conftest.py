"""Fixtures shared by the model tests."""

from __future__ import annotations

import pandas as pd
import pytest

from reference import cdnow as ref


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The published CDNOW calibration summary as RFM columns (Fader, Hardie & Lee 2005)."""
    return ref.load_cdnow_summary()

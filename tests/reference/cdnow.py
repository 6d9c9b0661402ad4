"""Known answers on the CDNOW sample (2,357 customers, 39-week calibration period, weeks).

Sources
-------
- BG/NBD: Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your customers" the easy
  way: An alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284. Published to 3
  decimals; full precision as reported by R's BTYD / CLVTools on the same data
  (/work/shared/data/README.md). Predictions: the paper's Figure/Table values and the R BTYD
  walkthrough (x=26 customer).
- Pareto/NBD on the same data: Fader & Hardie's Pareto/NBD note (2005) and R BTYD / CLVTools full
  precision; the x=26 predictions from the BTYD walkthrough.
- MBG/NBD: Batislam, Denizel & Filiztekin (2007) model as fitted by R's BTYDplus (``mbgcnbd``,
  k=1) on the same data, 3 decimals; its log-likelihood is what lifetimes' ModifiedBetaGeoFitter
  reaches at the same optimum (-9582.1327, computed, not published).
- Numerical stability values of the BG/NBD per-customer log-likelihood: as listed in
  /work/shared/data/README.md (independent implementation, full precision).

Data: ``published/cdnow_summary.csv`` (columns ID, x, t_x, T, zbar), renamed to the model columns
``frequency, recency, T`` by :func:`load_cdnow_summary`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

# the shared data sets sit beside the repository: <parent>/shared/data
DATA_DIR = Path(os.environ.get("CXASSET_SHARED_DATA",
                               Path(__file__).resolve().parents[3] / "shared" / "data"))
CDNOW_SUMMARY = DATA_DIR / "published" / "cdnow_summary.csv"
N_CUSTOMERS = 2357

# ---------------------------------------------------------------------------------------- BG/NBD
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
BGNBD_PUBLISHED_LL = -9582.4
BGNBD_FULL = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
BGNBD_LL = -9582.429
#: unconditional E[X(t)] at the published parameters (t in weeks)
BGNBD_EXPECTED = {0.1429: 0.0078, 1.0: 0.0532, 3.0: 0.1506, 31.8571: 1.0405, 32.0: 1.0437,
                  78.0: 1.8576}
BGNBD_EXPECTED_52 = 1.444004
#: conditional expectation in the next 39 weeks for x=2, t_x=30.43, T=38.86
BGNBD_CONDITIONAL_39 = {"x": 2, "t_x": 30.43, "T": 38.86, "t": 39.0, "value": 1.226}
#: R BTYD walkthrough customer: x=26, t_x=30.857, T=31; 52-week conditional expectation, P(alive)
BGNBD_X26 = {"x": 26, "t_x": 30.857, "T": 31.0, "t": 52.0, "expected": 25.75659,
             "p_alive": 0.9688523}
#: per-customer log-likelihood at a=0.8, b=2.5, r=0.25, alpha=4, T=40
BGNBD_STABILITY_PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
BGNBD_STABILITY = [({"x": 0, "t_x": 0.0, "T": 40.0}, -0.59947382),
                   ({"x": 200, "t_x": 38.0, "T": 40.0}, 100.7957)]

# ------------------------------------------------------------------------------------ Pareto/NBD
PNBD_PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PNBD_PUBLISHED_LL = -9595.0
PNBD_FULL = {"r": 0.55315, "alpha": 10.57633, "s": 0.60625, "beta": 11.67150}
PNBD_LL = -9594.976
#: at PNBD_FULL, the x=26 customer (R BTYD walkthrough)
PNBD_X26 = {"x": 26, "t_x": 30.857, "T": 31.0, "t": 52.0, "expected": 25.45647,
            "p_alive": 0.997874}

# ---------------------------------------------------------------------------------------- MBG/NBD
MBGNBD_PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
MBGNBD_LL = -9582.1327


def load_cdnow_summary() -> pd.DataFrame:
    """The published CDNOW RFM summary with model column names (frequency, recency, T)."""
    df = pd.read_csv(CDNOW_SUMMARY)
    return df.rename(columns={"x": "frequency", "t_x": "recency"})


def one_customer(case: dict) -> pd.DataFrame:
    """A one-row RFM frame from a known-answer case with keys x, t_x, T."""
    return pd.DataFrame({"frequency": [float(case["x"])], "recency": [float(case["t_x"])],
                         "T": [float(case["T"])]})

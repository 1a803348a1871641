"""The dashboard's render baseline: Streamlit drawing one line chart of 24 h x 20 videos, no Gold read."""

import numpy as np
import pandas as pd
import streamlit as st

st.title("Baseline")
minutes = pd.date_range("2025-01-01", periods=24 * 60, freq="min", tz="UTC")
rng = np.random.default_rng(7)
frame = pd.DataFrame(
    rng.poisson(50, size=(len(minutes), 20)), index=minutes, columns=[f"video_{i}" for i in range(20)]
)
st.line_chart(frame)

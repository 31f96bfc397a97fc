"""The seed stack's features: numeric columns coerced (bad values become 0),
each string column hashed into 10 one-hot features."""
import zlib

import numpy as np
import pandas as pd

NUMERIC = ["bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront", "view",
           "condition", "sqft_above", "sqft_basement", "yr_built", "yr_renovated"]
STRINGS = ["street", "city", "statezip", "country"]
BUCKETS = 10


def features(df):
    x = df[NUMERIC].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(dtype=float)
    hashed = np.zeros((len(df), len(STRINGS) * BUCKETS))
    for j, col in enumerate(STRINGS):
        for i, v in enumerate(df[col].astype(str)):
            hashed[i, j * BUCKETS + zlib.crc32(v.encode()) % BUCKETS] = 1
    return np.hstack([x, hashed])

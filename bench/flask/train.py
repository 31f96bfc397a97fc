"""Baseline for the throughput benchmark: the seed stack's batch steps with
pandas and scikit-learn on one CSV file: read, coerce numbers, hash each
string column into 10 features, split 0.7 train / 0.3 validation, fit a
LinearRegression, score RMSE on validation. Prints JSON timings."""
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from features import features  # noqa: E402  (this folder is on sys.path)

t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
t_read = time.perf_counter()
df["price"] = pd.to_numeric(df["price"], errors="coerce")
df = df[df["price"] > 0]
x = features(df)
y = df["price"].to_numpy(dtype=float)
t_prep = time.perf_counter()
rng = np.random.default_rng(0)
train = rng.random(len(df)) < 0.7
model = LinearRegression().fit(x[train], y[train])
rmse = mean_squared_error(y[~train], model.predict(x[~train])) ** 0.5
t_fit = time.perf_counter()
print(json.dumps({"rows": len(df), "read_s": t_read - t0, "preprocess_s": t_prep - t_read,
                  "fit_s": t_fit - t_prep, "total_s": t_fit - t0, "rmse": rmse,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))

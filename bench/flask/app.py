"""Baseline B: the serving half of the stack Refit replaces.

A Flask app (run by gunicorn) that answers the same predict request as
Refit's gateway with a scikit-learn LinearRegression fitted at start-up on
the same generated housing CSV, with the seed stack's features: numeric
columns coerced, each string column hashed into 10 one-hot features.
Written the plain way such apps are written (a pandas DataFrame per
request), not tuned up or down.
"""
import os

import pandas as pd
from flask import Flask, jsonify, request
from sklearn.linear_model import LinearRegression

from features import NUMERIC, STRINGS, features


def train(path):
    df = pd.read_csv(path)
    df = df[pd.to_numeric(df["price"], errors="coerce") > 0]
    return LinearRegression().fit(features(df), df["price"].astype(float))


app = Flask(__name__)
model = train(os.environ["BENCH_TRAIN_CSV"])


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/v1/models/housing:predict")
def predict():
    body = request.get_json(force=True)
    instances = body.get("instances") or []
    if not instances:
        return jsonify(error="instances: want at least one instance"), 400
    df = pd.DataFrame(instances)
    missing = [c for c in NUMERIC + STRINGS if c not in df.columns]
    if missing:
        return jsonify(error=f"missing field {missing[0]!r}"), 400
    return jsonify(predictions=model.predict(features(df)).tolist())

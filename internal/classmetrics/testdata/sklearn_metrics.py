"""Makes sklearn_metrics.json, the oracle of classmetrics_test.go.

Run: /usr/bin/python3 sklearn_metrics.py > sklearn_metrics.json
(Debian python3-sklearn 1.2.1; the version is in the output.)
"""
import json

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, log_loss,
                             precision_score, recall_score, roc_auc_score)


def case(name, y, P):
    y = np.asarray(y)
    P = np.asarray(P, dtype=float)
    k = P.shape[1]
    pred = P.argmax(axis=1)
    labels = list(range(k))
    out = {
        "name": name, "y": y.tolist(), "proba": P.tolist(),
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro", labels=labels, zero_division=0),
        "precision": precision_score(y, pred, average=None, labels=labels, zero_division=0).tolist(),
        "recall": recall_score(y, pred, average=None, labels=labels, zero_division=0).tolist(),
        "log_loss": log_loss(y, P, labels=labels),
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
    }
    if k == 2:
        out["roc_auc"] = roc_auc_score(y, P[:, 1])
    return out


rng = np.random.default_rng(3)
n = 300
y2 = rng.integers(0, 2, size=n)
s = np.clip(0.5 + 0.3 * (y2 - 0.5) + rng.normal(scale=0.25, size=n), 0, 1)
s = np.round(s, 1)  # many ties
P2 = np.stack([1 - s, s], axis=1)
y3 = rng.integers(0, 3, size=n)
Z = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y3]
P3 = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
P3[0] = [0, 1, 0]  # a zero probability of the true class: the clip
y3[0] = 0
cases = [
    case("binary with ties", y2, P2),
    case("three classes", y3, P3),
    case("a class never predicted", [0, 1, 2, 2], [[0.9, 0.1, 0], [0.2, 0.8, 0], [0.6, 0.3, 0.1], [0.1, 0.5, 0.4]]),
]
print(json.dumps({"sklearn": sklearn.__version__, "cases": cases}, indent=1))

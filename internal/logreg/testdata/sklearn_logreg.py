"""Makes sklearn_logreg.json, the oracle of logreg_test.go.

Run: /usr/bin/python3 sklearn_logreg.py > sklearn_logreg.json
(Debian python3-sklearn 1.2.1, numpy from Debian; the versions are in the
output.) Each problem is fitted with

    LogisticRegression(penalty="l2", C=C, solver="newton-cg", tol=1e-8,
                       max_iter=100000, multi_class="auto")

on a scipy CSR matrix: binary for 2 classes, multinomial for 3 and 4.
Refit's objective is the same with L2 = 1/C. The solver is newton-cg, not
lbfgs, because sklearn 1.2 stops lbfgs on scipy's default ftol (2.2e-9
relative) whatever tol says, which leaves the coefficients ~1e-5 off the
optimum; newton-cg stops on max|gradient| <= tol only, so both sides reach
the same optimum to far better than the 1e-6 the test asks.
"""
import json

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.linear_model import LogisticRegression


def problem(seed, n, p, k, density, C):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * (rng.random(size=(n, p)) < density)
    W = rng.normal(size=(p, k)) * 1.5
    z = X @ W + rng.normal(size=k) * 0.5
    pr = np.exp(z - z.max(axis=1, keepdims=True))
    pr /= pr.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in pr])
    Xs = sp.csr_matrix(X)
    Xs.sort_indices()
    clf = LogisticRegression(penalty="l2", C=C, solver="newton-cg", tol=1e-8, max_iter=100000, multi_class="auto")
    clf.fit(Xs, y)
    rows = []
    for i in range(n):
        s, e = Xs.indptr[i], Xs.indptr[i + 1]
        rows.append({"idx": Xs.indices[s:e].tolist(), "val": Xs.data[s:e].tolist()})
    return {
        "name": f"seed{seed}_n{n}_p{p}_k{k}_C{C}",
        "classes": k,
        "features": p,
        "C": C,
        "rows": rows,
        "y": y.tolist(),
        "coef": clf.coef_.tolist(),
        "intercept": clf.intercept_.tolist(),
        "proba": clf.predict_proba(Xs).tolist(),
        "n_iter": int(clf.n_iter_[0]),
    }


out = {
    "sklearn": sklearn.__version__,
    "numpy": np.__version__,
    "scipy": scipy.__version__,
    "problems": [
        problem(1, 80, 6, 2, 0.6, 1.0),
        problem(2, 120, 10, 2, 0.3, 0.1),
        problem(3, 150, 5, 3, 0.7, 1.0),
        problem(4, 200, 8, 4, 0.5, 10.0),
    ],
}
print(json.dumps(out, indent=1))

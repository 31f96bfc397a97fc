"""The baselines of bench/text: scikit-learn and fastText on the same files.

    baseline.py cv    IN.csv FOLDS          k-fold accuracy on the given folds
    baseline.py train TRAIN.csv TEST.csv    fit time, accuracy, peak RSS
    baseline.py ft-cv DIR K                 fastText on DIR/train-i.txt, test-i.txt
    baseline.py ft    TRAIN.txt TEST.txt    fastText fit time, accuracy, peak RSS

Each prints one JSON line. scikit-learn: TfidfVectorizer(sublinear_tf=True)
+ LogisticRegression() (C=1, lbfgs, max_iter=100, tol=1e-4), unigrams, as
Refit's side. fastText: `fasttext supervised` with its defaults (5 epochs,
dim 100, unigrams), on lower-cased text. Python: Debian's /usr/bin/python3
with python3-sklearn.
"""
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        head = next(r)
        assert head == ["review", "sentiment"], head
        docs, labels = [], []
        for rec in r:
            docs.append(rec[0])
            labels.append(rec[1])
    return docs, labels


def fit(docs, labels):
    vec = TfidfVectorizer(sublinear_tf=True)
    X = vec.fit_transform(docs)
    clf = LogisticRegression()
    clf.fit(X, labels)
    return vec, clf


def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024


def fasttext(train, test):
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m")
        t = time.perf_counter()
        subprocess.run(["fasttext", "supervised", "-input", train, "-output", model, "-verbose", "0"], check=True)
        secs = time.perf_counter() - t
        out = subprocess.run(["fasttext", "test", model + ".bin", test], check=True, capture_output=True, text=True).stdout
    # "N\t<n>\nP@1\t<p>\nR@1\t<r>": with one label per line P@1 is the accuracy.
    acc = float([l for l in out.splitlines() if l.startswith("P@1")][0].split()[1])
    return secs, acc


def main():
    cmd = sys.argv[1]
    if cmd == "cv":
        docs, labels = read(sys.argv[2])
        folds = [int(x) for x in open(sys.argv[3]).read().split()]
        k = max(folds) + 1
        t = time.perf_counter()
        accs = []
        for f in range(k):
            tr = [i for i in range(len(docs)) if folds[i] != f]
            te = [i for i in range(len(docs)) if folds[i] == f]
            vec, clf = fit([docs[i] for i in tr], [labels[i] for i in tr])
            accs.append(clf.score(vec.transform([docs[i] for i in te]), [labels[i] for i in te]))
        print(json.dumps({"tool": "sklearn " + sklearn.__version__, "task": "cv", "folds": k,
                          "accuracy": sum(accs) / k, "fold_accuracy": accs, "seconds": time.perf_counter() - t}))
    elif cmd == "train":
        t = time.perf_counter()
        docs, labels = read(sys.argv[2])
        read_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        vec, clf = fit(docs, labels)
        fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c
        td, tl = read(sys.argv[3])
        acc = clf.score(vec.transform(td), tl)
        print(json.dumps({"tool": "sklearn " + sklearn.__version__, "task": "train", "rows": len(docs),
                          "read_seconds": read_s, "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "accuracy": acc,
                          "peak_rss_mb": peak_mb(resource.RUSAGE_SELF), "features": len(vec.vocabulary_),
                          "iterations": int(clf.n_iter_[0])}))
    elif cmd == "ft-cv":
        d, k = sys.argv[2], int(sys.argv[3])
        t = time.perf_counter()
        accs = [fasttext(os.path.join(d, f"train-{f}.txt"), os.path.join(d, f"test-{f}.txt"))[1] for f in range(k)]
        print(json.dumps({"tool": "fasttext", "task": "cv", "folds": k, "accuracy": sum(accs) / k,
                          "fold_accuracy": accs, "seconds": time.perf_counter() - t}))
    elif cmd == "ft":
        secs, acc = fasttext(sys.argv[2], sys.argv[3])
        print(json.dumps({"tool": "fasttext", "task": "train", "fit_seconds": secs, "accuracy": acc,
                          "peak_rss_mb": peak_mb(resource.RUSAGE_CHILDREN)}))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

"""Makes sklearn_tfidf.json, the oracle of vectorize_test.go.

Run: /usr/bin/python3 sklearn_tfidf.py > sklearn_tfidf.json
(Debian python3-sklearn; the version is recorded in the output.)
The corpus avoids the few places where Refit's tokeniser differs from
sklearn's default token_pattern (combining marks, Greek final sigma,
dotted capital I): see schemas/README-text.md.
"""
import json

import sklearn
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

corpus = [
    "A great movie, a GREAT cast!",
    "Terrible plot; the cast was wasted. Terrible.",
    "Not great, not terrible: just a movie.",
    "Café déjà vu: the café scene is great",
    "10/10 would watch again, again and again",
    "",
    "Очень хорошо, очень!",
    "I",
]

configs = {
    "tfidf_1_1": TfidfVectorizer(sublinear_tf=True),
    "tfidf_1_2": TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)),
    "tfidf_1_2_min_df_2": TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2),
    "count_1_1": CountVectorizer(),
    "binary_2_2": CountVectorizer(binary=True, ngram_range=(2, 2)),
}

out = {"sklearn": sklearn.__version__, "corpus": corpus, "configs": {}}
for name, vec in configs.items():
    X = vec.fit_transform(corpus).tocsr()
    X.sort_indices()
    vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    rows = []
    for i in range(X.shape[0]):
        s, e = X.indptr[i], X.indptr[i + 1]
        rows.append({"idx": X.indices[s:e].tolist(), "val": X.data[s:e].astype(float).tolist()})
    entry = {"vocabulary": vocab, "rows": rows}
    if hasattr(vec, "idf_"):
        entry["idf"] = vec.idf_.tolist()
    out["configs"][name] = entry
print(json.dumps(out, indent=1, ensure_ascii=False))

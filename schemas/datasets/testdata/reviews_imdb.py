"""Makes reviews-imdb.csv from the UCI Sentiment Labelled Sentences (IMDB part).

    cd "$(mktemp -d)" && npm pack sentiment@5.0.2 && tar xzf sentiment-5.0.2.tgz
    python3 reviews_imdb.py package/test/fixtures/imdb.json > reviews-imdb.csv

Each record {"text", "class"} becomes a row review,sentiment with class 0 as
"negative" and 1 as "positive"; the text loses its surrounding white space
(the source pads every sentence with two spaces); the one record whose class
is null (and whose text is empty) is dropped. Rows keep the source order.
"""
import csv
import json
import sys

records = json.load(open(sys.argv[1], encoding="utf-8"))
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["review", "sentiment"])
kept = 0
for r in records:
    if r.get("class") is None:
        continue
    w.writerow([r["text"].strip(), {0: "negative", 1: "positive"}[r["class"]]])
    kept += 1
print(f"{kept} rows of {len(records)}", file=sys.stderr)

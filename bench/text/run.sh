#!/bin/sh
# Text classification, Refit against scikit-learn and fastText, measured in
# one run on the same files and folds, the sides alternating so a load
# change on the machine hits both. Usage: bench/text/run.sh [ROWS...]
# (default 100000). Results: one JSON line per measurement on stdout.
set -eu
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/textbench" ./bench/text
tb="$tmp/textbench"

# 1. IMDB sentences, 10 folds written once and read by every side.
imdb=schemas/datasets/testdata/reviews-imdb.csv
"$tb" folds --in "$imdb" --k 10 --seed 1 --out "$tmp/imdb.folds"
"$tb" cv --in "$imdb" --folds "$tmp/imdb.folds"
$py bench/text/baseline.py cv "$imdb" "$tmp/imdb.folds"
mkdir "$tmp/ft"
"$tb" ft --in "$imdb" --folds "$tmp/imdb.folds" --dir "$tmp/ft"
$py bench/text/baseline.py ft-cv "$tmp/ft" 10

# 2. Generated reviews: train on ROWS, test on 20,000 others (another seed).
"$tb" gen --rows 20000 --seed 2 --out "$tmp/test.csv"
"$tb" ft --in "$tmp/test.csv" --out "$tmp/test.txt"
for rows in "${@:-100000}"; do
	"$tb" gen --rows "$rows" --seed 1 --out "$tmp/train.csv"
	"$tb" ft --in "$tmp/train.csv" --out "$tmp/train.txt"
	for _ in 1 2; do
		"$tb" train --train "$tmp/train.csv" --test "$tmp/test.csv"
		$py bench/text/baseline.py train "$tmp/train.csv" "$tmp/test.csv"
		$py bench/text/baseline.py ft "$tmp/train.txt" "$tmp/test.txt"
	done
done

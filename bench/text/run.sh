#!/bin/sh
# Text classification, Refit against scikit-learn and fastText, measured in
# one run on the same files and folds, the sides alternating so a load
# change on the machine hits both, every side pinned to the same cores
# (CPUS, default 0,1). Usage: bench/text/run.sh [ROWS...] (default 100000).
# Results: one JSON line per measurement on stdout; after each training
# run, /usr/bin/time's peak RSS, wall and CPU time on stderr.
set -eu
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
cpus=${CPUS:-0,1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/textbench" ./bench/text
tb="$tmp/textbench"
pin() { taskset -c "$cpus" "$@"; }
measure() {
	label=$1
	shift
	/usr/bin/time -f "  $label: peak RSS %M KB, %e s wall, %U s user + %S s system" taskset -c "$cpus" "$@"
}

# 1. IMDB sentences, 10 folds written once and read by every side.
imdb=schemas/datasets/testdata/reviews-imdb.csv
"$tb" folds --in "$imdb" --k 10 --seed 1 --out "$tmp/imdb.folds"
pin "$tb" cv --in "$imdb" --folds "$tmp/imdb.folds"
pin $py bench/text/baseline.py cv "$imdb" "$tmp/imdb.folds"
mkdir "$tmp/ft"
"$tb" ft --in "$imdb" --folds "$tmp/imdb.folds" --dir "$tmp/ft"
pin $py bench/text/baseline.py ft-cv "$tmp/ft" 10

# 2. Generated reviews: train on ROWS, test on 20,000 others (another seed).
"$tb" gen --rows 20000 --seed 2 --out "$tmp/test.csv"
"$tb" ft --in "$tmp/test.csv" --out "$tmp/test.txt"
for rows in "${@:-100000}"; do
	"$tb" gen --rows "$rows" --seed 1 --out "$tmp/train.csv"
	"$tb" ft --in "$tmp/train.csv" --out "$tmp/train.txt"
	for _ in 1 2; do
		measure refit "$tb" train --train "$tmp/train.csv" --test "$tmp/test.csv"
		measure sklearn $py bench/text/baseline.py train "$tmp/train.csv" "$tmp/test.csv"
		measure fasttext $py bench/text/baseline.py ft "$tmp/train.txt" "$tmp/test.txt"
	done
done

#!/bin/sh
# Installs baseline B's Python stack (Debian's packages) when missing. If it
# cannot, the suite reports baseline B as skipped rather than faking it.
set -u
PY=/usr/bin/python3
if $PY -c 'import flask, gunicorn, sklearn, pandas' 2>/dev/null; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			python3-flask gunicorn python3-sklearn python3-pandas >/dev/null ||
		echo "bench/deps.sh: apt-get could not install the Python baseline; it will be skipped" >&2
else
	echo "bench/deps.sh: not root or no apt-get: install python3-flask gunicorn python3-sklearn python3-pandas for baseline B" >&2
fi
exit 0

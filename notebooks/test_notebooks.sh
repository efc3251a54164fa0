#!/usr/bin/env bash
# What CI runs for notebooks/: install Debian's Jupyter, pandas and
# matplotlib if they are missing, execute every notebook on the shipped
# sample, then make a fresh reduced lab run and execute every notebook on
# it. Exits non-zero if an install, the lab run or any notebook fails.
#
#   bash notebooks/test_notebooks.sh
#
# KEEP=DIR keeps the executed notebooks, PNGs and the fresh run in DIR
# (default: a temporary folder, removed at exit).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

# Python comes from Debian only (no PyPI).
pkgs=(jupyter-notebook jupyter-nbconvert jupyter-client python3-nbconvert python3-ipykernel
	python3-pandas python3-matplotlib)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "test_notebooks.sh: installing ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "test_notebooks.sh: need root to apt-get install ${missing[*]}" >&2
		exit 2
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -n ${KEEP:-} ]]; then
	work=$KEEP
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/echlab-nbtest.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi

echo "== the loader rejects a broken output folder with a clear error"
mkdir -p "$work/broken"
cp "$here"/sample/* "$work/broken/"
sed -i '2s/"outcome"/"outcome_renamed"/' "$work/broken/client.jsonl"
PYTHONPATH=$here ECHLAB_DATA=$work/broken /usr/bin/python3 - <<'PY'
import echlab_data as ed
try:
    ed.load_cases()
except ed.SchemaError as e:
    assert "client.jsonl line 2" in str(e) and "outcome" in str(e), e
    print("ok   ", e)
else:
    raise SystemExit("echlab_data accepted a client.jsonl line without 'outcome'")
PY

echo "== notebooks on the shipped sample ($here/sample)"
bash "$here/run.sh" "$here/sample" "$work/sample-out"

echo "== fresh reduced lab run"
# Every scenario a notebook needs: baseline and ech-shared (all five DNS
# transports), split, post-quantum, GREASE, ESNI and the padding sweep; twice each.
(cd "$root" && go run ./cmd/echlab run --quiet --out "$work/run" \
	--scenarios baseline,ech-shared,ech-split,grease,ech-pq,esni,padding-sweep --repeat 2)

echo "== notebooks on the fresh run ($work/run)"
bash "$here/run.sh" "$work/run" "$work/run-out"
echo "test_notebooks.sh: ok"

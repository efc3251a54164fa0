#!/usr/bin/env bash
# What CI runs for notebooks/: install Debian's Jupyter, pandas and
# matplotlib if they are missing, execute every notebook on the shipped
# sample, then make a fresh reduced lab run (scenarios, and a reduced
# adversary grid in its grid/ folder) and execute every notebook on it. Exits
# non-zero if an install, a lab run or any notebook fails, or if the grid
# notebook was skipped.
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
# grid.json (here in grid/, as a fresh run has it): the third cell without its
# outcome, then with an outcome the lab never writes; and a folder with no grid.
mkdir -p "$work/broken-grid/grid" "$work/no-grid"
PYTHONPATH=$here ECHLAB_DATA=$work/broken-grid SAMPLE=$here/sample /usr/bin/python3 - <<'PY'
import json, os
import echlab_data as ed

data = os.environ["ECHLAB_DATA"]
doc = json.load(open(os.path.join(os.environ["SAMPLE"], "grid.json")))


def rejects(cell3, want, data=data):
    if cell3 is not None:
        doc["grid"]["cells"][2] = cell3
        json.dump(doc, open(os.path.join(data, "grid", "grid.json"), "w"))
    try:
        ed.load_grid(data)
    except ed.SchemaError as e:
        assert all(w in str(e) for w in want), e
        print("ok   ", e)
    else:
        raise SystemExit(f"echlab_data accepted {cell3 if cell3 is not None else data}")


cell = dict(doc["grid"]["cells"][2])
rejects({k: v for k, v in cell.items() if k != "outcome"}, ["grid/grid.json cell 3", "outcome"])
rejects(dict(cell, outcome="connected"), ["grid/grid.json cell 3", "'connected'"])
rejects(None, ["no-grid", "grid.json or grid/grid.json"], data=os.path.join(data, "..", "no-grid"))
PY

# ran NAME OUT: fail unless run.sh executed notebook NAME into OUT (not skipped).
ran() {
	[[ -s $2/notebooks/$1 ]] || { echo "test_notebooks.sh: $1 did not run into $2" >&2; exit 1; }
}

echo "== notebooks on the shipped sample ($here/sample)"
bash "$here/run.sh" "$here/sample" "$work/sample-out"
ran 05_adversary_grid.ipynb "$work/sample-out"

echo "== fresh reduced lab run"
# Every scenario a notebook needs: baseline and ech-shared (all five DNS
# transports), split, post-quantum, GREASE, ESNI and the padding sweep; twice each.
(cd "$root" && go run ./cmd/echlab run --quiet --out "$work/run" \
	--scenarios baseline,ech-shared,ech-split,grease,ech-pq,esni,padding-sweep --repeat 2)

echo "== fresh reduced adversary grid ($work/run/grid)"
# Every client row against the control and three columns (a black hole on ECH
# would cost 2 s a row: reset instead); its own folder, as a grid run rewrites
# client.jsonl and the other files of a run.
(cd "$root" && go run ./cmd/echlab run --quiet --out "$work/run/grid" \
	--adversary 'block-ech rst,strip-ech,block-doh')

echo "== notebooks on the fresh run ($work/run)"
bash "$here/run.sh" "$work/run" "$work/run-out"
ran 05_adversary_grid.ipynb "$work/run-out"
echo "test_notebooks.sh: ok"

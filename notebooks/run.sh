#!/usr/bin/env bash
# Execute every notebook of notebooks/ headless on one `echlab run` output
# folder; write the executed copies and the PNGs to an output folder; exit
# non-zero if any notebook fails (an assert in a notebook fails it).
#
#   bash notebooks/run.sh [DATA_DIR [OUT_DIR]]
#   ECHLAB_DATA=out bash notebooks/run.sh
#
# DATA_DIR: the first argument, else $ECHLAB_DATA, else notebooks/sample.
#           A notebook that draws the adversary grid (it calls load_grid) is
#           skipped, with a "skip" line, when DATA_DIR has neither grid.json
#           nor grid/grid.json (a scenario run without `--adversary`).
# OUT_DIR:  the second argument, else $ECHLAB_OUT, else DATA_DIR itself
#           (executed notebooks in DATA_DIR/notebooks, PNGs in DATA_DIR/plots);
#           for the shipped sample the default is a temporary folder, so the
#           repository stays clean.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's Python and Jupyter (pandas, matplotlib, nbconvert come from apt):
# a pyenv python earlier on PATH must not shadow them.
export PATH=/usr/bin:/bin:$PATH

data=${1:-${ECHLAB_DATA:-$here/sample}}
data=$(cd "$data" && pwd) || { echo "run.sh: no data folder $data" >&2; exit 2; }
if [[ -n ${2:-} ]]; then
	out=$2
elif [[ -n ${ECHLAB_OUT:-} ]]; then
	out=$ECHLAB_OUT
elif [[ $data == "$here/sample" ]]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/echlab-notebooks.XXXXXX")
else
	out=$data
fi
mkdir -p "$out/notebooks" "$out/plots"
out=$(cd "$out" && pwd)

export ECHLAB_DATA=$data
export ECHLAB_PLOTS=${ECHLAB_PLOTS:-$out/plots}
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
export PYDEVD_DISABLE_FILE_VALIDATION=1 # quiet the debugger's frozen-modules warning

for tool in jupyter python3; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool missing (see notebooks/README.md)" >&2; exit 2; }
done
if ! jupyter kernelspec list 2>/dev/null | grep -q '^ *python3 '; then
	echo "run.sh: no python3 Jupyter kernel (apt-get install python3-ipykernel jupyter-client)" >&2
	exit 2
fi

echo "run.sh: data $ECHLAB_DATA"
echo "run.sh: executed notebooks in $out/notebooks, plots in $ECHLAB_PLOTS"
failed=()
start=$SECONDS
for nb in "$here"/[0-9]*.ipynb; do
	name=$(basename "$nb")
	if grep -q 'load_grid(' "$nb" && [[ ! -f $data/grid.json && ! -f $data/grid/grid.json ]]; then
		echo "skip  $name: no grid.json or grid/grid.json in $data (make one with echlab run --adversary)"
		continue
	fi
	t0=$SECONDS
	if jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.kernel_name=python3 \
		--ExecutePreprocessor.timeout=120 \
		--output-dir "$out/notebooks" --output "$name" "$nb" >"$out/notebooks/$name.log" 2>&1; then
		echo "ok    $name ($((SECONDS - t0)) s)"
	else
		echo "FAIL  $name ($((SECONDS - t0)) s): last lines of $out/notebooks/$name.log:"
		sed 's/\x1b\[[0-9;]*m//g' "$out/notebooks/$name.log" | grep -v '^\s*$' | tail -n 12 | sed 's/^/      /'
		failed+=("$name")
	fi
done
echo "run.sh: $(find "$ECHLAB_PLOTS" -name '*.png' | wc -l) PNGs in $ECHLAB_PLOTS, $((SECONDS - start)) s"
if ((${#failed[@]})); then
	echo "run.sh: ${#failed[@]} notebook(s) failed: ${failed[*]}" >&2
	exit 1
fi

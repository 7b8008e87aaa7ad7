# Sourced by the benchmarks/gpu_*.sh scripts: $OUT (default build/gpu), the wheels of .whl/ (packages
# the GPU machine lacks) installed into /tmp/site, and the repository on PYTHONPATH.
OUT=${OUT:-build/gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

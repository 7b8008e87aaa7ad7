#!/usr/bin/env bash
# Issue 6's GPU checks in one call of a lent GPU machine (see the README, "Benchmarks"):
#   1. benchmarks/device_check.py: notebook 13's few-shot rows of the built-in model on CUDA,
#      beside the committed CPU run (same code, seeds and images);
#   2. benchmarks/scale_benchmark.py: one few-shot erasure, one ESD-u iteration and SPM iterations (one
#      per latent shape its dynamic resolution draws, 15 at 512 px) on the full-size SD v1.4
#      architecture (random weights) at 512 px, fp32 / fp16 / bf16, attention slicing off / on; its
#      JSON is rewritten after each setting, so a run cut short by the timeout keeps its finished rows.
# Needs: python3 with torch (CUDA); wheels of diffusers / transformers in .whl/ where the machine
# lacks them; the 4 images per class in .devicecheck/images/<class>/ (written here by
# `python benchmarks/device_check.py --export ...` or notebook 13). Writes into $OUT (default build/gpu).
set -uo pipefail
source benchmarks/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, '| diffusers', diffusers.__version__, '| transformers', transformers.__version__)"
timeout "${DEVICE_CHECK_TIMEOUT:-150}" python3 benchmarks/device_check.py --device cuda --images .devicecheck/images \
    --out "$OUT/device_check_gpu.json" 2>&1 | grep -v -i "warn" | tee "$OUT/device_check.log"
timeout "${BENCHMARK_TIMEOUT:-330}" python3 benchmarks/scale_benchmark.py --resolution 512 \
    --methods fewshot esd spm --dtypes float32 float16 bfloat16 --out "$OUT/scale_benchmark_gpu.json" 2>&1 | grep -v -i "warn" | tee "$OUT/scale_benchmark.log"

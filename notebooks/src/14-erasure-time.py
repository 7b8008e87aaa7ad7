# %% [markdown]
# # 14 · How long does an erasure take, and how much memory? (paper, Sec. 4.3, claim 1)
#
# The paper reports 7-10 s per concept on a GPU for few-shot unlearning and 60-900 times longer for
# U-Net-based methods. Here every method erases the same classes in a fresh process each, one after
# another on the same machine; the median time is reported as a ratio to few-shot unlearning,
# with the peak resident memory of the process. CPU times on the built-in model: the ratios, not the
# seconds, are what compares with the paper.

# %%
import platform
import time

import pandas as pd

from erasure_lib import benchmark, experiment, plots, results

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = ["sneaker", "trouser", "bag"]  # classes erased (one process per method and class)
methods: list = ["fewshot", "esd", "uce"]  # methods timed
esd_train_method: str = "noxattn"  # ESD-u
esd_iterations: int = 1000  # ESD's published iteration count
seed: int = 0  # picks the images and seeds every method
threads: int = 2  # torch CPU threads in each process
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/erasure-time"  # where the few-shot image sets are written

# %%
configs = experiment.method_configs(fewshot_settings, seed, esd_train_method, esd_iterations)
print(platform.processor() or platform.machine(), *(configs[m] for m in methods), sep="\n")
t_start = time.perf_counter()

# %%
rows = []
for concept in classes:
    images = experiment.concept_images(images_dir, concept, 4, seed, results.resolve(work_dir))
    for method in methods:
        rows.append({"method": method, "erased_class": concept,
                     **benchmark.measure_erasure(experiment.model_source(model), method, concept, images, configs[method], threads=threads,
                                                  device=device, dtype=dtype)})
        print(concept, method, f"{rows[-1]['optimization_seconds']:.2f} s", flush=True)

# %%
runs = pd.DataFrame(rows)
results.write_csv(runs, results_prefix + "erasure_time_runs.csv", sort_by=["method", "erased_class"])
summary = runs.groupby("method").agg(seconds_median=("optimization_seconds", "median"), total_seconds_median=("total_seconds", "median"),
                                     peak_memory_mb=("peak_memory_mb", "max")).reset_index()
summary["ratio_to_fewshot"] = summary.seconds_median / summary.loc[summary.method == "fewshot", "seconds_median"].iloc[0]
summary = summary[["method", "seconds_median", "ratio_to_fewshot", "peak_memory_mb", "total_seconds_median"]]
results.write_csv(summary, results_prefix + "erasure_time.csv", sort_by=["method"])
summary.round(2)

# %%
fig = plots.time_bars(pd.read_csv(results.resolve(results_prefix + "erasure_time.csv")))
results.save_figure(fig, figures_prefix + "erasure_time.png")

# %%
results.record_run(
    "notebooks/paper/14-erasure-time.ipynb",
    dict(model=model, images_dir=images_dir, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         classes=classes, methods=methods, esd_train_method=esd_train_method, esd_iterations=esd_iterations, seed=seed, threads=threads),
    [results_prefix + "erasure_time_runs.csv", results_prefix + "erasure_time.csv", figures_prefix + "erasure_time.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 03 · Erasing each object class with few-shot unlearning (paper, Sec. 4.1)
#
# For each of the 10 classes, in turn: pick 4 real training images of it, erase it from the
# built-in model with `FewShotConfig.builtin()` (the paper's method, calibrated learning rate and
# epochs from notebook 02), and measure, with the same prompts and seeds before and after:
# the share of the erased class's images that the classifier still assigns to it, and the accuracy
# on the other nine classes. Three seeds (different images, different draws) per class.
#
# With the sd14 parameters (`notebooks/params/sd14/`) the same cells run the paper's setting:
# Stable Diffusion v1.4, 4 Imagenette images per class from `images_dir`, the paper's lr and epochs
# (`fewshot_settings: paper`) and EVA02's ImageNet top-1 as the judge (`evaluator: eva02`).

# %%
import time

import pandas as pd

from erasure_lib import benchmark, data, evaluation, experiment, plots, results
from erasure_lib.methods import fewshot

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes erased, one at a time
seeds: list = [0, 1, 2]  # erasure seeds: each picks its own images and random draws
n_images: int = 4  # real training images per erasure (the paper's 4)
n_erased: int = 32  # generated images of the erased class per evaluation
n_others: int = 16  # generated images of every other class per evaluation
num_inference_steps: int = 25  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
grid_classes: list = ["sneaker", "trouser", "bag"]  # classes shown before/after in the figure
throughput_images: int = 64  # images generated (at 20 and at 25 steps) to measure the generation throughput
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/object-erasure"  # where the few-shot image sets are written

# %% [markdown]
# The built-in defaults come from notebook 02's calibration: the setting with the smallest
# `erased_share + max(0, others_drop - 0.10)` among those of at least 2 epochs. Re-derived here
# from the committed CSV, and checked against `FewShotConfig.builtin()` (the paper's settings
# need no check).

# %%
if fewshot_settings == "builtin":
    calibration = pd.read_csv(results.resolve("results/fewshot_calibration_summary.csv"))
    choice = evaluation.choose_setting(calibration, max_erased_share=0.10, max_others_drop=0.10, min_step=2)
    print(choice)
    assert (choice["lr"], choice["epochs"]) == (fewshot.FewShotConfig.builtin().lr, fewshot.FewShotConfig.builtin().epochs), "defaults differ from the calibration"

# %%
t_start = time.perf_counter()
config = experiment.fewshot_config(fewshot_settings)
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads)
print(config, setup, sep="\n")

# %% [markdown]
# ## Erase each class with each seed; judge before and after on the same prompts and seeds

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
sweep = evaluation.sweep(setup.pipeline, setup.judge, setup.classes, config, seeds, images, setup.generation,
                         n_erased, n_others, setup.universe, keep_models=True)  # fmt: skip
table = evaluation.before_after(sweep.rows).drop(columns=["epochs", "trainable_parameters"])
results.write_csv(table, results_prefix + "fewshot_object_erasure.csv", sort_by=["erased_class", "seed"])
transitions = sweep.destinations.drop(columns="epochs")
results.write_csv(transitions, results_prefix + "fewshot_object_transitions.csv", sort_by=["erased_class", "when", "seed", "predicted_class"])
landed = sweep.imagenet_destinations.drop(columns="epochs")  # an ImageNet judge (sd14): where they land among all 1000 classes
if len(landed):
    results.write_csv(landed, results_prefix + "fewshot_object_imagenet_destinations.csv", sort_by=["erased_class", "when", "seed", "imagenet_index"])

# %%
summary = evaluation.before_after_summary(table, max_erased_share=0.10, max_others_drop=0.10) | {"config": config}
results.write_json(summary, results_prefix + "fewshot_object_erasure_summary.json")
pd.Series({k: v for k, v in summary.items() if k != "config"})

# %% [markdown]
# ## Benchmark: how long one erasure takes (optimization loop, median over classes, on `device`)
#
# The paper reports 7-10 s on a GPU for SD's 123M-parameter encoder and 512 px images. Printed
# here, not asserted: wall-clock time depends on the machine.

# %%
print(f"median optimization loop: {summary['median_optimization_seconds']:.2f} s "
      f"({len(table.groupby('erased_class'))} classes x {len(seeds)} seeds); set-up (loading, encoding): {summary['median_setup_seconds']:.2f} s")

# %% [markdown]
# Generation throughput of the built-in model in the same process (`throughput_images`, guidance on), for
# scale: one erasure costs about as much as generating this many images.

# %%
throughput = benchmark.generation_throughput(setup.pipeline, n_images=throughput_images, steps=(20, 25), guidance_scale=guidance_scale)
results.write_json(throughput | {"erasure_in_images": summary["median_optimization_seconds"] * throughput["images_per_second"]["25"]},
                   results_prefix + "generation_throughput.json")
throughput

# %% [markdown]
# **What this shows.** The committed run (built-in model, CPU) times the optimization loop at a
# median of 0.23 s per erasure (set-up 0.04 s), about as long as generating 2.5 images. The paper's
# claim 1 (7-10 s per concept on a GPU, with SD's far larger encoder and 512 px images) holds in
# kind: an erasure is cheap. The seconds themselves do not compare; notebook 14 compares the methods
# on one machine.

# %% [markdown]
# ## Before and after, per class

# %%
fig = plots.before_after_bars(pd.read_csv(results.resolve(results_prefix + "fewshot_object_erasure.csv")))
results.save_figure(fig, figures_prefix + "fewshot_object_erasure.png")

# %% [markdown]
# **What this shows.** Over 10 classes and 3 seeds the erased class's share falls from 0.956 to
# 0.632, while the other classes' accuracy moves from 0.956 to 0.936 (a drop of 0.021). The mean
# hides a wide spread: shirt (0.18), pullover (0.21) and ankle boot (0.33) are erased in most
# seeds, bag (1.00), trouser (0.99) and dress (0.93) hardly at all, and the seed matters as much
# as the class (coat: 0.00, 0.94 and 1.00 with seeds 0, 1, 2). The target of the summary (erased
# share at most 0.10, others within 0.10) is not met (`target_met: false`).
#
# **Against the paper.** Claim 4 (other concepts preserved) holds here: the others lose 0.021.
# The erasure itself holds only in part: after 2 epochs at the calibrated rate the built-in model
# still draws several of the erased classes.

# %% [markdown]
# ## Where the erased prompt goes: the classifier's verdict on the erased class's prompts
#
# Rows: the erased class (its own prompts); columns: what the classifier says the images show,
# before erasure and after (mean over seeds). The paper's claim 2 is that the prompt moves to a
# related concept; the full analysis is a later notebook.

# %%
fig = plots.transition_heatmaps(pd.read_csv(results.resolve(results_prefix + "fewshot_object_transitions.csv")), list(setup.universe))
results.save_figure(fig, figures_prefix + "fewshot_object_transitions.png")

# %% [markdown]
# **What this shows.** Before erasure nearly every prompt shows its own class (shirt, 0.66, is the
# exception, mixed with pullover and t-shirt). After erasure the images that leave a class mostly
# land on a neighbour of it: shirt goes to t-shirt (0.67), coat to pullover (0.35), sandal to
# sneaker (0.34), ankle boot to sneaker and bag (0.33 each), sneaker to t-shirt (0.19) and sandal
# (0.14); pullover spreads out, its largest share going to trouser (0.32). That matches claim 2 (the
# prompt moves to a related concept) for the footwear and the tops; notebook 06 measures it.

# %%
shown = {c: sweep.models[c] for c in grid_classes if c in sweep.models}
grid, labels = evaluation.before_after_grid(setup.pipeline, shown, "a photo of a {}", [10_000 + k for k in range(6)], setup.generation)
fig = plots.image_grid(grid, labels, None, title="'a photo of a <class>' before and after erasing <class>")
results.save_figure(fig, figures_prefix + "fewshot_object_erasure_samples.png")

# %% [markdown]
# **What this shows.** Samples of the first seed's erased models. In the committed figure the
# sneaker (erased share 0.03 with seed 0) gives way to pale, shapeless garments; the trouser and
# the bag, which that erasure leaves in place (erased share 1.00), still look like a trouser and a
# bag, the trouser in changed colours.

# %%
notebook = "notebooks/paper/03-erase-objects.ipynb"
results.record_run(
    notebook, experiment.notebook_parameters(notebook, globals()) | {"config": str(config)},
    [results_prefix + "fewshot_object_erasure.csv", results_prefix + "fewshot_object_erasure_summary.json",
     results_prefix + "fewshot_object_transitions.csv", results_prefix + "generation_throughput.json", figures_prefix + "fewshot_object_transitions.png",
     figures_prefix + "fewshot_object_erasure.png", figures_prefix + "fewshot_object_erasure_samples.png"]
    + ([results_prefix + "fewshot_object_imagenet_destinations.csv"] if len(landed) else []),
    time.perf_counter() - t_start, manifest=results_prefix + "manifest.json",
)

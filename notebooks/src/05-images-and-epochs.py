# %% [markdown]
# # 05 · How many images and how many epochs? Zero-shot? (paper, Sec. 4.6)
#
# Three ablations of the paper, on every class and five erasure seeds (never notebook 02's
# calibration seed): UA (the share of the erased class's images *not* judged as it, higher = more
# erased) and IRA (the other classes' accuracy, higher = better kept), (1) against the epoch
# (checkpoints of one run per class and seed), (2) against the number of real images (1, 2, 4, 8,
# 16) at the default number of epochs, and (3) for the zero-shot variant, where random latents
# replace the images; means with 95% bootstrap intervals over the runs (class x seed), in two
# wordings: the paper's templates (the erasure's own prompts and the built-in model's training
# captions) and held-out wordings the erasure never saw (`data.HELDOUT_OBJECT_TEMPLATES`). The per-step
# ascent loss of every run is kept for the loss figure, and the epoch sweep records the
# classifier-free probe loss that notebook 11's stopping rule reads.
#
# With the sd14 parameters (`notebooks/params/sd14/`) the same cells run on Stable Diffusion v1.4
# with Imagenette images (`images_dir`), EVA02 as the judge and the paper's settings.

# %%
import time

import pandas as pd

from erasure_lib import data, evaluation, experiment, plots, results

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes erased, one at a time
epochs: list = [2, 4, 8, 16, 32]  # checkpoints judged in the epoch sweep (4 images; it trains the last)
image_counts: list = [1, 2, 4, 8, 16]  # numbers of real images compared
seeds: list = [3, 4, 5, 6, 7]  # erasure seeds: each picks its own images and draws (never a calibration seed)
wordings: list = ["paper", "held-out"]  # evaluation wordings, names in data.WORDINGS
n_erased: int = 8  # generated images of the erased class per evaluation and wording
n_others: int = 1  # generated images of every other class per evaluation and wording (x 9 classes)
num_inference_steps: int = 50  # sampling steps (notebook 15: shares stop moving between 50 and 100)
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/images-and-epochs"  # where the few-shot image sets are written

# %% [markdown]
# ## Set-up: the model, the judge, and one run per question
#
# Every run is the default setting (`fewshot_settings`) with one thing changed: the epoch run
# trains `max(epochs)` epochs on 4 images and is judged after each of `epochs`; each image-count run uses that
# many images; the zero-shot run draws random latents instead of images.

# %%
seeds = experiment.evaluation_seeds(seeds, fewshot_settings)
t_start = time.perf_counter()
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads)
default = experiment.fewshot_config(fewshot_settings)
EPOCH_RUN = f"4 images, {max(epochs)} epochs"
variants = {EPOCH_RUN: experiment.fewshot_config(fewshot_settings, epochs=max(epochs)), **{str(n): default for n in image_counts},
            "zero-shot": experiment.fewshot_config(fewshot_settings, zero_shot=True)}  # fmt: skip
images = {EPOCH_RUN: experiment.image_source(images_dir, 4, work_dir), "zero-shot": lambda concept, seed: None,
          **{str(n): experiment.image_source(images_dir, n, work_dir) for n in image_counts}}  # fmt: skip
print(default, setup, sep="\n")

# %% [markdown]
# ## Erase every class in every run; judge every checkpoint of the epoch run and the others' final weights

# %%
sweep = evaluation.sweep(setup.pipeline, setup.judge, setup.classes, variants, seeds, images, setup.generation, n_erased, n_others,
                         setup.universe, epochs={name: epochs if name == EPOCH_RUN else None for name in variants},
                         variant="run", wordings={w: data.WORDINGS[w] for w in wordings})  # fmt: skip

# %%
rows = sweep.rows.merge(sweep.runs, on=["erased_class", "run", "seed"])
epoch_run = rows[rows.run == EPOCH_RUN].merge(sweep.probes, on=["erased_class", "run", "seed", "epochs"], how="left")
epochs_table = epoch_run.fillna({"probe_ratio": 1.0})[["erased_class", "seed", "wording", "epochs", "probe_ratio", "erased_share", "others_accuracy"]]
counts = rows[(rows.run != EPOCH_RUN) & (rows.epochs > 0)].rename(columns={"run": "images"})
counts_table = counts[["erased_class", "seed", "wording", "images", "steps", "erased_share", "others_accuracy"]]
losses = sweep.losses[sweep.losses.run.isin([EPOCH_RUN, "zero-shot"])].replace({"run": {EPOCH_RUN: "4 images"}})
results.write_csv(epochs_table, results_prefix + "fewshot_epochs.csv", sort_by=["erased_class", "seed", "wording", "epochs"])
results.write_csv(counts_table, results_prefix + "fewshot_image_counts.csv", sort_by=["erased_class", "seed", "wording", "images"])
results.write_csv(losses, results_prefix + "fewshot_losses.csv", sort_by=["erased_class", "seed", "run", "step"])

# %% [markdown]
# ## UA and IRA with their intervals: per number of images, and per epoch of the epoch sweep, per wording

# %%
judged = evaluation.before_after(sweep.rows).merge(sweep.runs[["erased_class", "run", "seed", "steps"]], on=["erased_class", "run", "seed"])
by_count = evaluation.unlearning_summary(judged[judged.run != EPOCH_RUN], by=["run", "wording"]).rename(columns={"run": "images"})
by_count = by_count.merge(judged.groupby("run").steps.mean().rename_axis("images").reset_index(), on="images")
by_epoch = evaluation.unlearning_summary(judged[judged.run == EPOCH_RUN], by=["epochs", "wording"])
stated = {"sampling_steps": num_inference_steps, "erased_images_per_run": n_erased, "other_images_per_class": n_others}
results.write_csv(by_count.assign(**stated), results_prefix + "fewshot_image_counts_summary.csv", sort_by=["images", "wording"])
results.write_csv(by_epoch.assign(**stated), results_prefix + "fewshot_epochs_summary.csv", sort_by=["epochs", "wording"])
by_count[["images", "wording", "steps", "UA", "UA_low", "UA_high", "IRA", "IRA_low", "IRA_high", "success_share"]].round(3)

# %%
by_epoch[["epochs", "wording", "UA", "UA_low", "UA_high", "IRA", "IRA_low", "IRA_high", "success_share"]].round(3)

# %% [markdown]
# **What this shows (number of images, zero-shot).** In the committed run (2026-12-07, the new
# defaults: lr 3e-4, 8 epochs; 10 classes x seeds 3-7 = 50 runs per row, 50 sampling steps, 8 + 9
# images per judged model and wording; base UA 0.04, IRA 1.00 in both wordings; the paper wording's
# numbers below) more images erase more, because each pair of
# images adds an optimizer step per epoch: 1 or 2 images (8 steps) UA 0.06 [0.02, 0.12] and 0.09
# [0.04, 0.16], IRA 0.96; 4 images (16 steps) 0.41 [0.28, 0.53], IRA 0.90; 8 images (32 steps) 0.69
# [0.58, 0.79], IRA 0.82; 16 images (64 steps) 0.98 [0.97, 0.99] (90% of runs succeed) but the
# other classes fall to IRA 0.56. Zero-shot (random latents, 16 steps) erases nothing: UA 0.02
# [0.01, 0.04], IRA 0.94. At the former defaults (lr 1e-3, 2 epochs) the same ordering: 0.10, 0.43,
# 0.73, 0.91 for 1, 4, 8, 16 images, zero-shot 0.13. The paper finds 4 images enough and zero-shot
# weaker; the second holds here, the first does not: 4 images are far from the best count, and
# count and step budget are not separable in this design (notebook 04's epochs give the same front
# per step). **Held-out wordings** (prompts the erasure never saw) tell the same story within the
# intervals: UA 0.07, 0.11, 0.42 [0.30, 0.54], 0.72 and 0.99 for 1, 2, 4, 8 and 16 images (IRA 0.96,
# 0.96, 0.90, 0.82, 0.57), zero-shot 0.03; runs succeed (UA >= 0.9) in 0.28 (4 images; paper 0.30) and
# 0.92 (16; paper 0.90). Of the 300 runs of this table, the erased share moves by 0.03 on average
# between the two wordings, and by more than 0.25 in 3.

# %%
fig = plots.epoch_curves(pd.read_csv(results.resolve(results_prefix + "fewshot_epochs.csv")))
results.save_figure(fig, figures_prefix + "fewshot_epochs.png")

# %% [markdown]
# **What this shows.** The mean UA rises with every epoch (0.04 before; 0.07, 0.12, 0.41, 0.74
# and 0.99 after 2, 4, 8, 16 and 32 epochs at lr 3e-4, paper wordings; held-out wordings, dashed:
# 0.075, 0.125, 0.420, 0.740, 0.985) and the other classes' accuracy falls with it (IRA 1.00, 0.96,
# 0.95, 0.90, 0.73, 0.58, the same to 0.01 in both wordings): at no epoch is more than 6% of runs
# clean (UA >= 0.9 with the others within 0.10) in either wording. The per-run spread is wide (each point is one class and seed). At
# the former defaults (lr 1e-3 after 1, 2, 4, 6 and 10 epochs) the same front: UA 0.26 to 0.97, IRA
# 0.93 to 0.58. The paper's fixed 4-5 epochs assume a plateau that the built-in model does not
# have; notebook 15 measures, class by class, the window between erased and damaged.

# %%
fig = plots.loss_by_step(pd.read_csv(results.resolve(results_prefix + "fewshot_losses.csv")))
results.save_figure(fig, figures_prefix + "fewshot_losses.png")

# %% [markdown]
# **What this shows.** The per-step ascent loss (the negated denoising loss; lower is further
# from the concept) is noisy, each step drawing its own timesteps and noise, and its mean drifts
# down over the 64 steps of the 32-epoch run (-0.20 on average over the first 8 steps, -0.34 over
# steps 25-40, -0.39 over the last 8, single steps down to -0.61) without levelling off: gradient
# ascent has no fixed point, so the number of steps, not convergence, decides where an erasure
# ends. The zero-shot run's loss falls faster per step (-0.63 and -0.62 at its second and third steps), on
# latents that are not images of the concept, and erases nothing.

# %%
results.record_run(
    "notebooks/paper/05-images-and-epochs.ipynb",
    experiment.notebook_parameters("notebooks/paper/05-images-and-epochs.ipynb", globals()) | {"config": str(default)},
    [results_prefix + f for f in ("fewshot_epochs.csv", "fewshot_image_counts.csv", "fewshot_losses.csv",
                                  "fewshot_image_counts_summary.csv", "fewshot_epochs_summary.csv")]
    + [figures_prefix + "fewshot_epochs.png", figures_prefix + "fewshot_losses.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

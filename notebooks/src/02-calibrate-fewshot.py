# %% [markdown]
# # 02 · Calibrating few-shot unlearning for the built-in model
#
# The paper's learning rate (1e-5, Adam, 4-5 epochs of 4 images at batch 2) is tuned for Stable
# Diffusion's 123M-parameter text encoder. The built-in encoder is far smaller, so we keep the
# paper's structure and sweep only the learning rate and the number of epochs: for every class,
# erase it with every learning rate, keep a checkpoint after every epoch, and measure the erased
# class's detection rate and the accuracy on the other nine classes. The defaults of
# `FewShotConfig.builtin()` are chosen from `results/fewshot_calibration.csv`.

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
learning_rates: list = [3e-4, 1e-3, 3e-3]  # learning rates swept (1e-5 and 1e-4 left sneaker and trouser intact after 8 epochs in a first probe)
epochs: int = 12  # epochs per erasure
eval_epochs: list = [1, 2, 3, 4, 6, 8, 12]  # the epochs whose checkpoints are evaluated
n_images: int = 4  # real training images of the class (the paper's 4)
seed: int = 0  # picks the images and seeds the erasure
n_erased: int = 12  # generated images of the erased class per evaluation
n_others: int = 4  # generated images of every other class per evaluation
num_inference_steps: int = 50  # sampling steps: the evaluation count of notebooks 03-17 (notebook 15: shares stop moving by 50)
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/calibration"  # where the few-shot image sets are written
min_epochs: int = 2  # the fewest epochs a chosen setting may have (one epoch is 2 optimizer steps; notebook 03 re-applies the rule with it)

# %% [markdown]
# ## Set-up: the model, the judge, and one configuration per learning rate

# %%
t_start = time.perf_counter()
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads)
configs = {lr: experiment.fewshot_config(fewshot_settings, lr=lr, epochs=epochs) for lr in learning_rates}
setup

# %% [markdown]
# ## The sweep: erase, then judge every epoch's checkpoint with the same prompts and seeds
#
# Epoch 0 is the base model. `optimization_seconds` at a checkpoint is the run's time pro rata.

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
sweep = evaluation.sweep(setup.pipeline, setup.judge, setup.classes, configs, [seed], images, setup.generation,
                         n_erased, n_others, setup.universe, epochs=eval_epochs, variant="lr")  # fmt: skip
grid = sweep.rows.drop(columns=["seed", "trainable_parameters", "setup_seconds"])
results.write_csv(grid, results_prefix + "fewshot_calibration.csv", sort_by=["erased_class", "lr", "epochs"])

# %% [markdown]
# ## The mean over classes, and the setting chosen (erased share at most 0.10, others within 0.10)

# %%
summary = grid.groupby(["lr", "epochs"])[["erased_share", "others_accuracy"]].mean().reset_index()
results.write_csv(summary, results_prefix + "fewshot_calibration_summary.csv", sort_by=["lr", "epochs"])
choice = evaluation.choose_setting(summary, max_erased_share=0.10, max_others_drop=0.10, min_step=min_epochs)
print("chosen (lr, epochs):", choice)
summary.pivot(index="epochs", columns="lr", values=["erased_share", "others_accuracy"]).round(3)

# %% [markdown]
# ## The trade-off: erased share against the other classes' accuracy (mean over classes)

# %%
fig = plots.tradeoff(pd.read_csv(results.resolve(results_prefix + "fewshot_calibration_summary.csv")), group="lr", step="epochs", chosen=choice)
results.save_figure(fig, figures_prefix + "fewshot_calibration.png")

# %% [markdown]
# **What this shows.** In the committed run (10 classes, calibration seed 0, 50 sampling steps, the
# evaluation's count, where notebook 15 finds the shares converged) the base model shows the
# erased class in 0.950 of its images and the other classes at 0.975. Every learning rate moves along
# the same trade-off: the erased share falls with the epochs and the other classes' accuracy with it.
# At 3e-3 one epoch already brings the erased share to 0.23 but the others to 0.83; 1e-3 after 2
# epochs gives 0.47 with the others at 0.91 (a drop of 0.067); 3e-4 after 8 epochs gives 0.42 with the
# others at 0.95 (a drop of 0.028), and 4 more epochs at 3e-4 erase no more (0.44) while the others
# fall to 0.82. No setting meets both aims (erased share at most 0.10, others within 0.10), so
# `choose_setting` keeps the other classes first: among the settings within 0.10 of the base model's
# accuracy it returns the one that erases most (the star): **3e-4 after 8 epochs** (16 optimizer
# steps), the `FewShotConfig.builtin()` defaults since 2026-12-06 and the rule notebook 03 applies to
# this same file. With one epoch allowed the choice is the same.
#
# The run before it (2026-12-01) judged at 20 sampling steps and chose 1e-3 after 2 epochs (0.375,
# others 0.889); at 50 steps that setting erases less (0.47) and 3e-4 after 8 epochs lies on a better
# point of the front. The notebooks whose committed results predate this run used 1e-3 after 2
# epochs; each records its settings in `results/manifest.json`, and the README lists which have been
# re-taken on the new defaults.
#
# **Against the paper.** The paper erases a concept from SD with lr 1e-5 in 4-5 epochs while
# keeping the other concepts; on the small built-in encoder the calibrated learning rate, 3e-4, is
# 30 times the paper's, and even the best setting erases only partly before the other classes suffer. The
# structure of the method carries over; its clean separation of erased and kept concepts does not,
# on this model.

# %%
notebook = "notebooks/paper/02-calibrate-fewshot.ipynb"
results.record_run(
    notebook, experiment.notebook_parameters(notebook, globals()),
    [results_prefix + "fewshot_calibration.csv", results_prefix + "fewshot_calibration_summary.csv", figures_prefix + "fewshot_calibration.png"],
    time.perf_counter() - t_start, manifest=results_prefix + "manifest.json",
)

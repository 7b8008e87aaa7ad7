# %% [markdown]
# # 16 · A stopping rule that lands each erasure inside its window (beyond the paper)
#
# The paper trains a fixed number of epochs and leaves the choice of checkpoint to the user
# (Sec. 3). Notebook 15 shows that each concept is erased cleanly at its own number of steps. A rule
# that needs no classifier: after every optimizer step, stop when the **concept probe** (the
# denoising loss of the concept's prompts on its own images, relative to its start; higher means
# more erased) reaches `r`, or when the **retain drift** (how far the U-Net's prediction for the
# other concepts' prompts has moved, relative to their conditioning signal; higher means more
# damage) reaches `s`. `FewShotConfig(stop_loss_ratio=r, stop_retain_drift=s, stop_check="step")`.
#
# Hygiene: `r` and `s`, and the fixed step count the rule is compared with, are chosen on the
# **calibration** concepts and seeds of notebook 15's sweep only; both are then run as a user would
# run them on **evaluation seeds** never used to choose anything, for every concept, and judged on
# held-out wordings. The classifier only judges.

# %%
import time
from dataclasses import replace

import pandas as pd

from erasure_lib import data, experiment, plots, results, stopping, window

# %% tags=parameters
model: str = "builtin"  # the stand-in notebook 15 measured
stand_in: str = "joint-clip"  # its name in notebook 15's tables
learning_rates: list = [1e-3, 1e-4]  # learning rates of notebook 15's sweep among which the rule (and the fixed count) choose
calibration_classes: list = ["t-shirt", "pullover", "coat", "shirt", "bag"]  # concepts r and s are chosen on
calibration_seeds: list = [0, 1, 2]  # notebook 15's seeds used to choose
evaluation_classes: list = list(data.CLASSES)  # concepts the rule is reported on
evaluation_seeds: list = [3, 4, 5]  # erasure seeds never used to choose anything
ratios: list = [1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.5, 1e9]  # concept-probe thresholds r tried (1e9: off)
drifts: list = [0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 1e9]  # retain-drift thresholds s tried (1e9: off)
n_images: int = 4  # real images per erasure
n_per_class: int = 3  # judged images of every other class
n_erased: int = 6  # judged images of the erased class
evaluation_seed_offset: int = 20_000  # generation seeds, as in notebook 15
num_inference_steps: int = 25  # PNDM sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 1  # torch CPU threads
work_dir: str = "build/stopping-rule"  # where the few-shot image sets are written
results_prefix: str = "results/"  # folder of the result files (notebook 15's are read from here)
figures_prefix: str = "figures/"  # folder of the figures

# %% [markdown]
# ## Calibration: every rule setting and every fixed step count on the calibration runs

# %%
t_start = time.perf_counter()
assert not set(calibration_seeds) & set(evaluation_seeds), "calibration and evaluation seeds must be disjoint"
trajectories = pd.read_csv(results.resolve(results_prefix + "erasure_window.csv"))
traces = pd.read_csv(results.resolve(results_prefix + "erasure_window_probes.csv"))
pick = lambda t: t[(t.stand_in == stand_in) & t.lr.isin(learning_rates) & t.concept.isin(calibration_classes) & t.seed.isin(calibration_seeds)]  # noqa: E731
max_steps = trajectories[trajectories.stand_in == stand_in].groupby("lr").step.max()  # the cap: never longer than notebook 15's runs
grid = stopping.summarize_settings(stopping.rule_grid(pick(trajectories), pick(traces), ratios, drifts), ["lr", "ratio", "drift"])
fixed_runs = stopping.fixed_step_table(pick(trajectories))
fixed = stopping.summarize_settings(fixed_runs[fixed_runs.step % 2 == 0], ["lr", "step"])  # whole epochs (2 steps), the paper's unit
rule, fixed_choice = grid.iloc[0], fixed.iloc[0]
results.write_csv(grid, results_prefix + "stopping_rule_calibration.csv", sort_by=["lr", "ratio", "drift"])
print(f"chosen rule: lr {rule.lr:g}, r = {rule.ratio:g}, s = {rule.drift:g}; chosen fixed count: lr {fixed_choice.lr:g}, {int(fixed_choice.step)} steps")
pd.concat([grid.groupby("lr").head(3).assign(setting="rule"), fixed.groupby("lr").head(2).assign(setting="fixed")]).round(3)

# %% [markdown]
# ## Evaluation: both chosen settings, run as a user would, on seeds never used to choose

# %%
setup = experiment.setup(model, "builtin", num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, threads=threads)
settings = stopping.chosen_settings(rule, fixed_choice, max_steps, retain=data.CLASSES)
print(*(f"{name}: {config}" for name, config in settings.items()), sep="\n")
images = experiment.image_source("builtin", n_images, work_dir)
prompts_for = lambda concept: window.heldout_prompts(concept, data.CLASSES, n_erased, n_per_class, evaluation_seed_offset)  # noqa: E731
generation = replace(setup.generation, batch_size=128)
heldout = stopping.evaluate_settings(setup.pipeline, setup.judge, images, evaluation_classes, evaluation_seeds, settings, prompts_for, generation)
heldout["calibration_class"] = heldout.concept.isin(calibration_classes)
results.write_csv(heldout, results_prefix + "stopping_rule_heldout.csv", sort_by=["setting", "concept", "seed"])

# %%
summary = stopping.heldout_summary(heldout)
results.write_csv(summary, results_prefix + "stopping_rule_heldout_summary.csv", sort_by=["setting"])
summary.round(3)

# %%
fig = plots.stopping_rule_outcomes(heldout)
results.save_figure(fig, figures_prefix + "stopping_rule.png")

# %% [markdown]
# **What this shows.** One point per held-out erasure (concept x evaluation seed): the erased share
# (left is better) against the drop of the other classes' accuracy (lower is better), for the
# calibrated rule and for the calibrated fixed step count. The dashed box is the target (erased <= 0.10,
# drop <= 0.10). The summary table gives, per setting, the share of runs inside the box, the number of
# concepts erased cleanly in every evaluation seed's mean, and bootstrap intervals over runs.

# %%
results.record_run(
    "notebooks/paper/16-stopping-rule.ipynb",
    experiment.notebook_parameters("notebooks/paper/16-stopping-rule.ipynb", globals())
    | dict(max_steps={f"{lr:g}": int(n) for lr, n in max_steps.items()}, chosen_lr=float(rule.lr), chosen_ratio=float(rule.ratio),
           chosen_drift=float(rule.drift), chosen_fixed_lr=float(fixed_choice.lr), chosen_fixed_steps=int(fixed_choice.step)),
    [results_prefix + f for f in ("stopping_rule_calibration.csv", "stopping_rule_heldout.csv", "stopping_rule_heldout_summary.csv")]
    + [figures_prefix + "stopping_rule.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 11 · When to stop, without a classifier
#
# The paper trains a fixed number of epochs and leaves the choice of epoch to the user; gradient
# ascent has no fixed point. A rule that needs no classifier: stop after the first epoch at which
# the **probe loss** (the denoising loss of the concept's own images at four fixed noise levels,
# with the current text encoder) reaches `r` times its value before erasure
# (`FewShotConfig(stop_loss_ratio=r)`). Reads the epoch sweep of notebook 05 (which records the
# probe ratio and the classifier's verdict after every epoch) and asks, for several `r`: how close
# does the rule land to the best epoch that the classifier would pick (the smallest
# `erased_share + max(0, others_drop - 0.10)`)? The classifier is used here only to *judge* the rule.

# %%
import time

import pandas as pd

from erasure_lib import evaluation, experiment, results

# %% tags=parameters
ratios: list = [1.05, 1.1, 1.2, 1.3, 1.5, 2.0]  # stopping thresholds r compared
max_others_drop: float = 0.10  # the preservation budget of the "best epoch"
results_prefix: str = "results/"  # folder of the result files (read and written)

# %%
t_start = time.perf_counter()
epochs = pd.read_csv(results.resolve(results_prefix + "fewshot_epochs.csv"))
table = evaluation.stopping_rule_table(epochs, ratios, max_others_drop)
by = ["ratio", *(["wording"] if "wording" in table else [])]  # each evaluation wording judged apart
results.write_csv(table, results_prefix + "stopping_rule.csv", sort_by=[*by, "erased_class", "seed"])
summary = table.groupby(by)[["epoch_gap", "erased_share_rule", "erased_share_best", "others_drop_rule", "others_drop_best", "stopped"]].mean().reset_index()
results.write_csv(summary, results_prefix + "stopping_rule_summary.csv", sort_by=by)
summary.round(3)

# %% [markdown]
# **What this shows.** Notebook 05's committed epoch sweep (2026-12-07, the new defaults' lr 3e-4;
# 10 classes x seeds 3-7, judged after 2, 4, 8, 16 and 32 epochs, 50 sampling steps): the
# classifier's best epoch per run reaches an erased share of 0.015 at a cost of 0.26 to the other
# classes. The rule fires in every run at every `r`, but lands 9-16 epochs from that best (at lr
# 3e-4 an epoch travels about a third of the former epoch at 1e-3: the former sweep's 3.0-4.2 epochs are
# about the same distance): a low threshold stops early and keeps the others (r = 1.05: erased share 0.94,
# others' drop 0.05), a high one erases more and costs more (r = 2.0: 0.24 and 0.30; r = 1.3: 0.46
# and 0.14). No threshold finds each run's own window: the rule moves every run along the same
# erasure-damage front, as at the former defaults (r = 1.05: 0.70 and 0.07; r = 2.0: 0.26 and
# 0.34). The paper makes no claim here; the checkpoints are coarse (the sweep's five epochs), and
# notebook 16 tests the rule step by step on calibration and held-out runs. Since notebook 05 judges
# on held-out wordings too, each wording is read apart (the rule reads the same probe and stops at
# the same epoch; only the classifier's verdicts differ): on held-out wordings the best epoch erases
# to 0.03 at a cost of 0.26, and every threshold lands within 0.02 of the paper wording's erased
# share and others' drop (r = 1.05: 0.92 and 0.05; r = 1.3: 0.47 and 0.14; r = 2.0: 0.24 and 0.30),
# 0.3-0.5 epochs further from the best.

# %%
results.record_run(
    "notebooks/paper/11-when-to-stop.ipynb",
    experiment.notebook_parameters("notebooks/paper/11-when-to-stop.ipynb", globals()) | {"reads": results_prefix + "fewshot_epochs.csv"},
    [results_prefix + "stopping_rule.csv", results_prefix + "stopping_rule_summary.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

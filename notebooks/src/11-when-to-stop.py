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
results.write_csv(table, results_prefix + "stopping_rule.csv", sort_by=["ratio", "erased_class", "seed"])
summary = table.groupby("ratio")[["epoch_gap", "erased_share_rule", "erased_share_best", "others_drop_rule", "others_drop_best", "stopped"]].mean().reset_index()
results.write_csv(summary, results_prefix + "stopping_rule_summary.csv", sort_by=["ratio"])
summary.round(3)

# %%
results.record_run(
    "notebooks/paper/11-when-to-stop.ipynb",
    experiment.notebook_parameters("notebooks/paper/11-when-to-stop.ipynb", globals()) | {"reads": results_prefix + "fewshot_epochs.csv"},
    [results_prefix + "stopping_rule.csv", results_prefix + "stopping_rule_summary.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 19 · The erasure window across stand-ins: encoder type and size (beyond the paper)
#
# The paper erases concepts from Stable Diffusion, whose text encoder (CLIP ViT-L/14's text tower,
# 12 layers x 768) was pretrained contrastively and stays frozen while the U-Net learns to read it.
# Our built-in model is far smaller, so notebook 15 measured the **erasure window** (the optimizer
# steps between "concept erased" and "other concepts damaged") on stand-ins built in different ways
# (notebook `00-train-stand-in`):
#
# - `joint-clip`: the built-in model, a 4 x 128 CLIP-architecture text encoder trained jointly with the U-Net;
# - `frozen-clip`: SD's recipe, the 4 x 128 text tower of a small CLIP trained contrastively on this world, frozen;
# - `frozen-clip-8x256`: the same recipe with an 8 x 256 text tower (a step toward SD's 12 x 768);
# - `frozen-minilm`: a really pretrained language encoder (all-MiniLM-L6-v2, 6 x 384), frozen.
#
# If the paper's fixed epochs are to serve every concept, the windows must overlap across concepts
# and seeds. This notebook reads notebook 15's runs of every stand-in and compares them like for like:
# at each learning rate, only the judged steps that all compared stand-ins share count (a finer grid
# finds windows that a coarser one cannot see). It trains and generates nothing.

# %%
import time

import pandas as pd

from erasure_lib import data, experiment, plots, results, window

# %% tags=parameters
sources: dict = {  # stand-in -> the folder holding its notebook-15 results (erasure_window.csv)
    "joint-clip": "results/",
    "frozen-clip": "results/stand-ins/frozen-clip/",
    "frozen-clip-8x256": "results/stand-ins/frozen-clip-8x256/",
    "frozen-minilm": "results/stand-ins/frozen-minilm/",
}
encoders: dict = {  # stand-in -> its text encoder, in words (the table's second column)
    "joint-clip": "CLIP text, 4 x 128, trained jointly with the U-Net",
    "frozen-clip": "CLIP text, 4 x 128, contrastive on this world, frozen",
    "frozen-clip-8x256": "CLIP text, 8 x 256, contrastive on this world, frozen",
    "frozen-minilm": "MiniLM-L6 (BERT), 6 x 384, pretrained on 1B sentence pairs, frozen",
}
compared: dict = {  # learning rate -> the stand-ins compared at it (each must have been run at that rate)
    1e-3: ["joint-clip", "frozen-clip", "frozen-clip-8x256", "frozen-minilm"],
    1e-4: ["frozen-clip-8x256", "frozen-minilm"],  # joint-clip's 1e-4 grid (20, 40, ...) shares no step with theirs
    1e-5: ["frozen-clip-8x256"],  # the paper's rate, measured on the larger CLIP tower only (steps 20-480)
}
concepts: list = list(data.CLASSES)  # the garments compared (every compared stand-in must have run each)
min_base_share: float = 0.5  # a run counts only if the base model draws its concept in at least this share of its images
results_prefix: str = "results/"  # folder of the result files written
figures_prefix: str = "figures/"  # folder of the figures

# %%
t_start = time.perf_counter()
missing = sorted({s for names in compared.values() for s in names} - set(sources))
if missing:
    raise ValueError(f"compared stand-ins without a results folder in `sources`: {missing}")
trajectories = pd.concat([pd.read_csv(results.resolve(folder + "erasure_window.csv")).assign(stand_in=name)
                          for name, folder in sources.items()], ignore_index=True)  # fmt: skip
compared = {float(lr): list(names) for lr, names in compared.items()}
trajectories = trajectories[trajectories.concept.isin(concepts)]
bounds, summary = window.compare_stand_ins(trajectories, compared, min_base_share=min_base_share, concepts=concepts)
summary.insert(1, "text_encoder", summary.stand_in.map(encoders))
results.write_csv(bounds, results_prefix + "erasure_window_stand_ins_bounds.csv", sort_by=["lr", "stand_in", "concept", "seed"])
results.write_csv(summary, results_prefix + "erasure_window_stand_ins.csv", sort_by=["lr", "stand_in"])
summary.drop(columns=["never_damaged"]).round(2)

# %% [markdown]
# **What this shows.** One row per stand-in and learning rate, every run (the `concepts` x 3 erasure
# seeds, judged on held-out wordings) read on the steps in `shared_steps` only. `clean_share`: the
# runs with a judged step at which the garment is erased (share <= 0.10) and the other classes are
# kept (accuracy within 0.10 of the base model), with a 95% bootstrap interval over runs (a run whose
# base model draws its garment in fewer than `min_base_share` of the images has nothing to erase: it
# is left out, `left_out` counts such runs and `left_out_concepts` names them);
# `concepts_clean`: garments clean in at least one seed; the medians of the first erased and first
# damaged steps (a window needs the first before the second); `best_fixed_*`: the one step count
# that is clean in most runs, the paper's fixed-epochs setting at its best. A shared window would
# show as a best fixed count clean in nearly every run (0.8 is the bar notebook 16 set for a rule).

# %%
windows = trajectories.merge(bounds[["stand_in", "lr"]].drop_duplicates(), on=["stand_in", "lr"])
fig = plots.erasure_window(windows, bounds, columns=len(max(compared.values(), key=len)))
results.save_figure(fig, figures_prefix + "erasure_window_stand_ins.png")

# %% [markdown]
# **What this shows.** One panel per stand-in (columns) and learning rate (rows), on the shared steps:
# each garment's three seeds, from the step where it is erased (circle) to the step where the other
# classes are damaged (cross), green where the two leave a clean window. A shared window would be a
# vertical band crossing green segments in every row of a panel. The README's section "The erasure
# window" gives the numbers and what they say about encoder type and size.

# %%
results.record_run(
    "notebooks/paper/19-window-across-stand-ins.ipynb",
    experiment.notebook_parameters("notebooks/paper/19-window-across-stand-ins.ipynb", globals())
    | {"reads": [folder + "erasure_window.csv" for folder in sources.values()]},
    [results_prefix + "erasure_window_stand_ins.csv", results_prefix + "erasure_window_stand_ins_bounds.csv",
     figures_prefix + "erasure_window_stand_ins.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

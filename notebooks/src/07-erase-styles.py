# %% [markdown]
# # 07 · Erasing a style (paper, Sec. 4: styles through the style templates)
#
# The built-in world has two styles, `sketch` (an edge map) and `sepia` (a colour tint), named in
# captions. Each is erased with the paper's 17 style templates ("a painting in the style of {}")
# from 4 real images of random garments in that style, on five erasure seeds (never notebook 02's
# calibration seed), and judged after 2 epochs (the built-in setting, calibrated on objects) and
# after longer runs, on the prompts "<template> of a <class> in the style of <style>". Measures, as
# UnlearnCanvas names them: **UA** = the share of the erased style's images *not* judged in that
# style (higher = more erased), **IRA** = the share of the *other* style's images still judged in
# it (kept), **CRA** = the garment accuracy on the other style's prompts (the other kind of concept,
# kept); each the mean over seeds with a 95% bootstrap interval. With two styles in the built-in
# world, IRA rests on one other style. Two evaluation wordings, on the same evaluation seeds: the
# paper's object templates (also the built-in model's training captions: "a photo of a bag in the
# style of sepia") and held-out ones no caption and no erasure prompt ever used
# (`data.HELDOUT_OBJECT_TEMPLATES`: "an image of the bag in the style of sepia").
#
# With the sd14 parameters (`notebooks/params/sd14/`) the same cells run on Stable Diffusion v1.4:
# each artist of `styles` is erased from 4 of its real paintings in `style_images_dir/<artist>/`
# with the paper's settings, and CLIP ViT-L/14 judges the style zero-shot (`style_judge: clip`:
# the nearest of "a painting in the style of <artist>" for every artist, or "a photo" for none).
# The paper shows styles only qualitatively: the grid of samples before and after is the figure.

# %%
import time
from dataclasses import replace

import torch

from erasure_lib import data, evaluation, experiment, plots, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.models import load_pipeline

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
style_images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <style_images_dir>/<style>/
style_judge: str = "builtin"  # judge: 'builtin' (garment/style classifier) or 'clip' (zero-shot over styles, with clip_model)
clip_model: str = "models/clip"  # CLIP of the 'clip' judge: a folder (from the repo root) or a hub id
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
styles: list = ["sketch", "sepia"]  # styles erased, one at a time (and, for the 'clip' judge, the styles it names)
subjects: list = list(data.CLASSES)  # what the evaluation prompts show, in every judged style
wordings: list = ["paper", "held-out"]  # evaluation wordings, names in data.WORDINGS (the same evaluation seeds in each)
seeds: list = [3, 4, 5, 6, 7]  # erasure seeds: images and random draws (never a calibration seed)
epochs: list = [2, 4, 8, 16]  # the checkpoints judged (8: the built-in setting since 2026-12-06; 2 before)
min_ua: float = 0.9  # a run succeeds when its UA reaches this
n_images: int = 4  # real images in the style per erasure
n_per_class: int = 4  # generated images per subject and style in each evaluation
num_inference_steps: int = 50  # sampling steps (notebook 15: shares stop moving between 50 and 100)
guidance_scale: float = 7.5  # classifier-free guidance
grid_seeds: int = 6  # samples per row of the before/after figure (seeds 10000, 10001, ...)
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/styles"  # where the few-shot image sets are written

# %%
seeds = experiment.evaluation_seeds(seeds, fewshot_settings)
torch.set_num_threads(threads)
config = experiment.fewshot_config(fewshot_settings, concept_type="style", epochs=max(epochs))
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
print(config, generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
judge = experiment.load_style_judge(style_judge, styles, clip_model, device)
tables = experiment.style_prompt_tables(judge, n_per_class, subjects, wordings={w: data.WORDINGS[w] for w in wordings})
print("judged styles:", list(tables), "in the wordings", wordings)

# %% [markdown]
# ## Erase each style with each seed; judge the prompts of every style, in each wording, before and after

# %%
table, erased_models = evaluation.style_erasure_table(
    pipeline, judge, styles, seeds,
    image_source=lambda style, seed: experiment.style_images(style_images_dir, style, n_images, seed, results.resolve(work_dir)),
    config_for=lambda seed: replace(config, seed=seed),
    prompt_tables=tables, generation=generation, epochs=epochs,
)  # fmt: skip
results.write_csv(table, results_prefix + "style_erasure.csv", sort_by=["erased_style", "prompt_style", "wording", "when", "epochs", "seed"])

# %% [markdown]
# ## UA, IRA and CRA per erased style, wording and epochs (paper wording solid, held-out dashed)

# %%
summary = evaluation.style_unlearning_summary(table, min_ua=min_ua).assign(sampling_steps=num_inference_steps)
results.write_csv(summary, results_prefix + "style_erasure_summary.csv", sort_by=["erased_style", "wording", "epochs"])
fig = plots.style_measures(summary)
results.save_figure(fig, figures_prefix + "style_erasure_measures.png")
summary[["erased_style", "wording", "epochs", "UA_before", "UA", "UA_low", "UA_high", "IRA", "CRA", "subject_accuracy", "success_share"]].round(3)

# %% [markdown]
# ## Before and after: "a painting in the style of <style>", the same seeds for both models (the last checkpoint)

# %%
grid, labels = evaluation.before_after_grid(pipeline, erased_models, data.STYLE_TEMPLATES[0], [10_000 + k for k in range(grid_seeds)], generation)
title = f"'{data.STYLE_TEMPLATES[0].format('<style>')}' before and after erasing <style> ({max(epochs)} epochs, seed {seeds[0]})"
fig = plots.image_grid(grid, labels, None, title=title)
results.save_figure(fig, figures_prefix + "style_erasure_samples.png")

# %% [markdown]
# **What this shows.** In the committed run (2026-12-07: seeds 3-7, 50 sampling steps, 4 images per
# garment and style per judged model and wording, lr 3e-4 from notebook 02's 50-step calibration;
# base model: UA 0.00 for both styles in both wordings, IRA 1.00, CRA 0.82-0.88 on the paper's
# wordings and 0.70-0.88 on the held-out ones) the built-in setting (8 epochs, calibrated on objects)
# leaves both styles intact (UA 0.00 and 0.02), as do 2 and 4 epochs. Twice as long erases them,
# nearly all or nothing per seed: after 16 epochs sketch reaches UA 0.98 [0.92, 1.00] (4 of 5 seeds
# succeed) and sepia 0.74 [0.42, 1.00] (3 of 5), and the figure of samples shows the erased prompts
# turn into dark, untinted garments. The rest pays: erasing sketch keeps sepia (IRA 1.00) but most
# garments drawn in sketch are lost (CRA 0.28, from 0.88); erasing sepia takes part of sketch with it
# (IRA 0.74) and a third of the garments (CRA 0.55, from 0.82). **Held-out wordings** (dashed; prompts
# no caption and no erasure used) say the same: sketch 0.95 [0.85, 1.00] and sepia 0.73 [0.37, 1.00]
# after 16 epochs, with the same seeds succeeding, IRA 1.00 and 0.76, CRA 0.28 and 0.54. The paper
# wording's rows are the previous run's (2026-12-06) to the digit. The run at the former defaults
# (lr 1e-3, 2026-12-05) erased both styles after 8 epochs (UA 0.99 and 1.00) at a larger cost to the
# other style (IRA 0.28 after erasing sepia, 0.94 after sketch) and similar CRA (0.53, 0.14).
#
# **Against the paper.** The paper shows styles erased (qualitatively). On the built-in model a
# style can be erased, at twice the object setting's steps, and then not without damaging the
# garments drawn in it, and for sepia the other style: "erased only with damage to the rest". With
# two styles in this world, IRA rests on one other style.

# %%
results.record_run(
    "notebooks/paper/07-erase-styles.ipynb",
    experiment.notebook_parameters("notebooks/paper/07-erase-styles.ipynb", globals()) | {"config": str(config)},
    [results_prefix + "style_erasure.csv", results_prefix + "style_erasure_summary.csv",
     figures_prefix + "style_erasure_measures.png", figures_prefix + "style_erasure_samples.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

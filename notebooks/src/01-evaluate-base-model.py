# %% [markdown]
# # 01 · How good is the built-in model?
#
# Every later number stands on this: if the base model cannot draw a sneaker when asked, "erasing
# the sneaker" means nothing. For each class, the share of generated images (prompt
# "a photo of a {class}", fixed seeds) that the project's classifier assigns to that class, next to
# the classifier's accuracy on real held-out test images of the class. Styles are checked the same way.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, plots, results
from erasure_lib.generate import GenerationConfig, generate_grid
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
n_per_class: int = 64  # generated images per class (and per style)
seed_offset: int = 10000  # evaluation seeds are seed_offset + k
num_inference_steps: int = 25  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
grid_seeds: int = 8  # columns of the sample grid
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
prompt_set = evaluation.ClassPromptSet(n_per_class=n_per_class, seed_offset=seed_offset, templates=("a photo of a {}",))
print(generation, prompt_set, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(model)
classifier = clf.load_classifier(CLASSIFIER_PATH)

# %% [markdown]
# ## Generated accuracy against real accuracy, per class

# %%
classified = evaluation.classify_generated(pipeline, classifier, prompt_set.table(), generation, progress_bar=True)
real = clf.real_accuracy(classifier, data.load_fashion_mnist("test"))["plain"]
quality = pd.DataFrame(
    {
        "class": list(data.CLASSES),
        "generated_accuracy": evaluation.per_class_accuracy(classified).reindex(data.CLASSES).to_numpy(),
        "real_accuracy": [real[c] for c in data.CLASSES],
    }
)
results.write_csv(quality, results_prefix + "base_model_quality.csv")
print(f"mean generated accuracy {quality.generated_accuracy.mean():.3f}, mean real accuracy {quality.real_accuracy.mean():.3f}")
quality.round(3)

# %% [markdown]
# ## Styles: does "... in the style of sketch" draw a sketch, and still the right garment?

# %%
style_rows = []
for style in data.STYLES[1:]:
    styled = evaluation.ClassPromptSet(n_per_class=n_per_class // 4, seed_offset=seed_offset, style=style, templates=("a photo of a {}",))
    out = evaluation.classify_generated(pipeline, classifier, styled.table(), generation)
    style_rows.append(
        {
            "style": style,
            "style_share": float((out.predicted_style == data.STYLES.index(style)).mean()),
            "class_accuracy": float((out.predicted == out.class_index).mean()),
        }
    )
style_quality = pd.DataFrame(style_rows)
results.write_csv(style_quality, results_prefix + "base_model_style_quality.csv")
style_quality.round(3)

# %% [markdown]
# ## Samples: rows are classes, columns are seeds

# %%
prompts = [f"a photo of a {c}" for c in data.CLASSES]
grid = generate_grid(pipeline, prompts, [seed_offset + k for k in range(grid_seeds)], generation)
fig = plots.image_grid(grid, list(data.CLASSES), [f"seed {seed_offset + k}" for k in range(grid_seeds)])
results.save_figure(fig, figures_prefix + "base_model_samples.png")

# %%
styled_prompts = [data.object_prompt(c, s) for s in data.STYLES for c in ("sneaker", "dress", "bag")]
grid = generate_grid(pipeline, styled_prompts, [seed_offset + k for k in range(grid_seeds)], generation)
fig = plots.image_grid(grid, styled_prompts, None)
results.save_figure(fig, figures_prefix + "base_model_style_samples.png")

# %%
results.record_run(
    "notebooks/paper/01-evaluate-base-model.ipynb",
    dict(model=model, n_per_class=n_per_class, seed_offset=seed_offset, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + f for f in ("base_model_quality.csv", "base_model_style_quality.csv")]
    + [figures_prefix + f for f in ("base_model_samples.png", "base_model_style_samples.png")],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 01 · How good is the built-in model?
#
# Every later number stands on this: if the base model cannot draw a sneaker when asked, "erasing
# the sneaker" means nothing. For each class, the share of generated images (prompt
# "a photo of a {class}", fixed seeds) that the project's classifier assigns to that class, next to
# the classifier's accuracy on real held-out test images of the class. Styles are checked the same way.
#
# With the sd14 parameters the same cells judge Stable Diffusion v1.4 on the 10 Imagenette classes
# with EVA02 (`evaluator: eva02`; its accuracy on the real images in `images_dir` beside it); the
# style cells need a judge that names styles, which only the built-in classifier does.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, experiment, plots, results
from erasure_lib.generate import GenerationConfig, generate_grid
from erasure_lib.models import load_pipeline

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # real images: 'builtin' (Fashion-MNIST test set) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes evaluated
n_real: int = 100  # real images per class for the judge's own accuracy (a folder's; the built-in test set is used whole)
n_per_class: int = 64  # generated images per class (and per style)
seed_offset: int = 10000  # evaluation seeds are seed_offset + k
num_inference_steps: int = 50  # sampling steps (notebook 15: shares stop moving between 50 and 100; as the paper notebooks judge)
guidance_scale: float = 7.5  # classifier-free guidance
grid_seeds: int = 8  # columns of the sample grid
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
classes = experiment.check_classes(classes, classifier)
prompt_set = evaluation.ClassPromptSet(tuple(classes), n_per_class, seed_offset, templates=("a photo of a {}",), universe=universe)
print(generation, prompt_set, sep="\n")

# %% [markdown]
# ## Generated accuracy against real accuracy, per class

# %%
classified = evaluation.classify_generated(pipeline, classifier, prompt_set.table(), generation, progress_bar=True)
real = experiment.real_accuracy(classifier, images_dir, classes, n_real)
quality = pd.DataFrame(
    {
        "class": classes,
        "generated_accuracy": evaluation.per_class_accuracy(classified).reindex(classes).to_numpy(),
        "real_accuracy": [real[c] for c in classes],
    }
)
results.write_csv(quality, results_prefix + "base_model_quality.csv")
print(f"mean generated accuracy {quality.generated_accuracy.mean():.3f}, mean real accuracy {quality.real_accuracy.mean():.3f}")
quality.round(3)

# %% [markdown]
# **What this shows.** In the committed run (64 images per class, 50 PNDM steps) the judge names the
# prompted class in 0.953 of the generated images, against 0.864 of the real test images: the judge
# finds the model's garments easier than real ones, which are more varied. Every class passes the
# project's bar (mean >= 0.80, no class under half its real accuracy); the weakest are shirt (0.69,
# as on real images, 0.67: shirts look like t-shirts, pullovers and coats) and bag (0.89 against 0.98).
# At 25 steps the numbers were within 0.03 of these (shirt 0.66, sneaker 0.98, ankle boot 1.00).
# Against the paper: it checks SD's generations with a classifier the same way (Sec. 4.1); an erasure
# can only be measured on classes the base model draws, and here all ten are drawn.

# %% [markdown]
# ## Styles: does "... in the style of sketch" draw a sketch, and still the right garment?

# %%
styles = data.STYLES[1:] if experiment.has_styles(classifier) else []  # only the built-in classifier names styles
style_quality = evaluation.style_quality(pipeline, classifier, styles, n_per_class // 4, seed_offset, generation)
if styles:
    results.write_csv(style_quality, results_prefix + "base_model_style_quality.csv")
else:
    print(f"skipped: the evaluator {evaluator!r} names no styles")
style_quality.round(3)

# %% [markdown]
# **What this shows.** "... in the style of sketch" (sepia) draws a sketch (sepia) in 1.00 (0.99) of
# the images, and the garment is still the prompted one in 0.78 (0.91): the styles the style erasures
# of notebook 07 remove are drawn, and drawing them keeps most of the garment.

# %% [markdown]
# ## Samples: rows are classes, columns are seeds

# %%
prompts = [f"a photo of a {c}" for c in classes]
grid = generate_grid(pipeline, prompts, [seed_offset + k for k in range(grid_seeds)], generation)
fig = plots.image_grid(grid, classes, [f"seed {seed_offset + k}" for k in range(grid_seeds)])
results.save_figure(fig, figures_prefix + "base_model_samples.png")

# %% [markdown]
# **What this shows.** One row per class, the same eight evaluation seeds in every row: the garments
# are recognisable at 32 px, with the variety of pose and shade of Fashion-MNIST; sandals are the
# least solid (thin straps on black), shirts the least distinct from t-shirts and pullovers.

# %%
if styles:
    styled_prompts = [data.object_prompt(c, s) for s in data.STYLES for c in ("sneaker", "dress", "bag")]
    grid = generate_grid(pipeline, styled_prompts, [seed_offset + k for k in range(grid_seeds)], generation)
    fig = plots.image_grid(grid, styled_prompts, None)
    results.save_figure(fig, figures_prefix + "base_model_style_samples.png")

# %%
results.record_run(
    "notebooks/paper/01-evaluate-base-model.ipynb",
    experiment.notebook_parameters("notebooks/paper/01-evaluate-base-model.ipynb", globals()),
    [results_prefix + "base_model_quality.csv", figures_prefix + "base_model_samples.png"]
    + ([results_prefix + "base_model_style_quality.csv", figures_prefix + "base_model_style_samples.png"] if styles else []),
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 07 · Erasing a style (paper, Sec. 4: styles through the style templates)
#
# The built-in world has two styles, `sketch` (an edge map) and `sepia` (a colour tint), named in
# captions. Each is erased with the paper's 17 style templates ("a painting in the style of {}")
# from 4 real images of random garments in that style. Judged on the prompts
# "<template> of a <class> in the style of <style>": the share the style classifier still calls
# that style, the garment accuracy under it, and the same for the *other* style (should be kept).
#
# With the sd14 parameters (`notebooks/params/sd14/`) the same cells run on Stable Diffusion v1.4:
# each artist of `styles` is erased from 4 of its real paintings in `style_images_dir/<artist>/`
# with the paper's settings, and CLIP ViT-L/14 judges the style zero-shot (`style_judge: clip`:
# the nearest of "a painting in the style of <artist>" for every artist, or "a photo" for none).
# The paper shows styles only qualitatively: the grid of samples before and after is the figure.

# %%
import time

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
seeds: list = [0, 1, 2]  # erasure seeds (images and random draws)
n_images: int = 4  # real images in the style per erasure
n_per_class: int = 4  # generated images per subject and style in each evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
grid_seeds: int = 6  # samples per row of the before/after figure (seeds 10000, 10001, ...)
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/styles"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
config = experiment.fewshot_config(fewshot_settings, concept_type="style")
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
print(config, generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
judge = experiment.load_style_judge(style_judge, styles, clip_model, device)
tables = experiment.style_prompt_tables(judge, n_per_class, subjects)
print("judged styles:", list(tables))

# %% [markdown]
# ## Erase each style with each seed; judge the prompts of every style before and after

# %%
table, erased_models = evaluation.style_erasure_table(
    pipeline, judge, styles, seeds,
    image_source=lambda style, seed: experiment.style_images(style_images_dir, style, n_images, seed, results.resolve(work_dir)),
    config_for=lambda seed: experiment.fewshot_config(fewshot_settings, concept_type="style", seed=seed),
    prompt_tables=tables, generation=generation,
)  # fmt: skip
results.write_csv(table, results_prefix + "style_erasure.csv", sort_by=["erased_style", "prompt_style", "when", "seed"])
table.groupby(["erased_style", "prompt_style", "when"])[["style_share", "class_accuracy"]].mean().round(3)

# %% [markdown]
# ## Before and after: "a painting in the style of <style>", the same seeds for both models

# %%
grid, labels = evaluation.before_after_grid(pipeline, erased_models, data.STYLE_TEMPLATES[0], [10_000 + k for k in range(grid_seeds)], generation)
fig = plots.image_grid(grid, labels, None, title=f"'{data.STYLE_TEMPLATES[0].format('<style>')}' before and after erasing <style> (seed {seeds[0]})")
results.save_figure(fig, figures_prefix + "style_erasure_samples.png")

# %%
results.record_run(
    "notebooks/paper/07-erase-styles.ipynb",
    experiment.notebook_parameters("notebooks/paper/07-erase-styles.ipynb", globals()) | {"config": str(config)},
    [results_prefix + "style_erasure.csv", figures_prefix + "style_erasure_samples.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

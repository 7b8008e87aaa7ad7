# %% [markdown]
# # 07 · Erasing a style (paper, Sec. 4: styles through the style templates)
#
# The built-in world has two styles, `sketch` (an edge map) and `sepia` (a colour tint), named in
# captions. Each is erased with the paper's 17 style templates ("a painting in the style of {}")
# from 4 real images of random garments in that style. Judged on the prompts
# "<template> of a <class> in the style of <style>": the share the style classifier still calls
# that style, the garment accuracy under it, and the same for the *other* style (should be kept).

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
styles: list = ["sketch", "sepia"]  # styles erased, one at a time
seeds: list = [0, 1, 2]  # erasure seeds (images and random draws)
n_images: int = 4  # real images in the style per erasure
n_per_class: int = 4  # generated images per class and style in each evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
work_dir: str = "build/styles"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
print(fewshot.FewShotConfig.builtin(concept_type="style"), generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(model)
classifier = clf.load_classifier(CLASSIFIER_PATH)
tables = {s: evaluation.ClassPromptSet(n_per_class=n_per_class, style=s).table() for s in data.STYLES[1:]}

# %%
rows = []
for erased_style in styles:
    for seed in seeds:
        images = data.export_style_images(results.resolve(work_dir) / f"{erased_style}-seed{seed}", erased_style, n=n_images, seed=seed)
        config = fewshot.FewShotConfig.builtin(concept_type="style", seed=seed)
        erased = fewshot.erase(pipeline, erased_style, images, config, progress_bar=False).apply(pipeline)
        for prompt_style, table in tables.items():
            for when, p in (("before", pipeline), ("after", erased)):
                if when == "before" and seed != seeds[0]:
                    continue
                out = evaluation.classify_generated(p, classifier, table, generation)
                rows.append({"erased_style": erased_style, "seed": seed, "prompt_style": prompt_style, "when": when,
                             "style_share": float((out.predicted_style == data.STYLES.index(prompt_style)).mean()),
                             "class_accuracy": float((out.predicted == out.class_index).mean())})
    print(erased_style, flush=True)

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "style_erasure.csv", sort_by=["erased_style", "prompt_style", "when", "seed"])
table.groupby(["erased_style", "prompt_style", "when"])[["style_share", "class_accuracy"]].mean().round(3)

# %%
results.record_run(
    "notebooks/paper/07-erase-styles.ipynb",
    dict(model=model, styles=styles, seeds=seeds, n_images=n_images, n_per_class=n_per_class,
         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "style_erasure.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

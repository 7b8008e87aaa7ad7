# %% [markdown]
# # 10 · Several concepts at once
#
# The paper erases one concept at a time. Here 2, 3 and 5 classes are erased either **jointly**
# (one run; every image is paired with its own class's prompts, `fewshot.erase_concepts`) or
# **one after another** (each erasure starts from the previous erased model), with the built-in
# defaults and 4 images per class; judged on the erased classes and on the remaining ones.

# %%
import time

import numpy as np
import pandas as pd
import torch

from erasure_lib import evaluation, experiment, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot
from erasure_lib.models import load_pipeline

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
set_sizes: list = [2, 3, 5]  # how many classes are erased together
repeats: int = 2  # random class sets per size
seed: int = 0  # picks the class sets, the images and the erasure draws
n_images: int = 4  # real training images per class
n_erased: int = 16  # generated images per erased class
n_others: int = 8  # generated images per remaining class
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
work_dir: str = "build/several-concepts"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
config = experiment.fewshot_config(fewshot_settings, seed=seed)
print(config, generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
rng = np.random.default_rng(seed)
class_sets = [sorted(rng.choice(universe, size=k, replace=False).tolist()) for k in set_sizes for _ in range(repeats)]
class_sets

# %%
rows = []
for erased_set in class_sets:
    folders = {c: experiment.concept_images(images_dir, c, n_images, seed, results.resolve(work_dir)) for c in erased_set}
    table = evaluation.erasure_prompt_table(erased_set, n_erased, n_others, classes=universe)
    before = evaluation.judge(pipeline, classifier, table, erased_set, generation)
    joint = fewshot.erase_concepts(pipeline, folders, config, progress_bar=False)
    sequential, seconds = pipeline, 0.0
    for c in erased_set:
        step = fewshot.erase(sequential, c, folders[c], config, progress_bar=False)
        sequential, seconds = step.apply(sequential), seconds + step.optimization_seconds
    for mode, p, s in (("joint", joint.apply(pipeline), joint.optimization_seconds), ("one after another", sequential, seconds)):
        after = evaluation.judge(p, classifier, table, erased_set, generation)
        rows.append({"classes": " + ".join(erased_set), "n_classes": len(erased_set), "mode": mode,
                     "erased_share_before": before["erased_share"], "erased_share_after": after["erased_share"],
                     "others_accuracy_before": before["others_accuracy"], "others_accuracy_after": after["others_accuracy"],
                     "optimization_seconds": s})
    print(erased_set, flush=True)

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "several_concepts.csv", sort_by=["n_classes", "classes", "mode"])
table.groupby(["n_classes", "mode"])[["erased_share_before", "erased_share_after", "others_accuracy_before", "others_accuracy_after"]].mean().round(3)

# %%
results.record_run(
    "notebooks/paper/10-several-concepts.ipynb",
    dict(model=model, images_dir=images_dir, evaluator=evaluator, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         set_sizes=set_sizes, repeats=repeats, seed=seed, n_images=n_images, n_erased=n_erased, n_others=n_others,
         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, config=str(config)),
    [results_prefix + "several_concepts.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 12 · Keep the neighbours: the plain method against the preservation term
#
# The paper's loss protects nothing: it pushes the text encoder away from the concept until the
# epochs run out, and in a small world related concepts share text features, so erasing "sneaker"
# may take "sandal" and "ankle boot" along. `FewShotConfig(preserve_weight=w, preserve_neighbours=k,
# preserve_vocabulary=...)` adds an anchor on the text embeddings of the k concepts nearest the
# erased one in the *original* encoder's space (no U-Net call, no classifier). For every class, both
# variants over the epochs (checkpoints): erased share, accuracy on the related classes (the
# grouping of notebook 06) and on the unrelated ones; UCE, which has a preservation term of its own,
# on the same figure; and the cost of the preserved variant as a time ratio.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, plots, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot, uce
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
classes: list = list(data.CLASSES)  # classes erased, one at a time
epochs: int = 8  # epochs per run (every checkpoint in eval_epochs is judged)
eval_epochs: list = [2, 4, 6, 8]  # checkpoints judged
preserve_weight: float = 1.0  # weight of the anchor term
preserve_neighbours: int = 3  # retained neighbours (nearest in the original text-embedding space)
seed: int = 0  # picks the images and seeds the erasure
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 8  # generated images of every other class per evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/keep-the-neighbours"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
vocabulary = (*data.CLASSES, *data.STYLES[1:])
variants = {
    "plain (paper)": fewshot.FewShotConfig.builtin(seed=seed, epochs=epochs, keep_checkpoints=True),
    "preserved": fewshot.FewShotConfig.builtin(seed=seed, epochs=epochs, keep_checkpoints=True, preserve_weight=preserve_weight,
                                               preserve_neighbours=preserve_neighbours, preserve_vocabulary=vocabulary),
}
print(*variants.values(), generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(model)
classifier = clf.load_classifier(CLASSIFIER_PATH)

# %%
rows, seconds = [], {name: [] for name in variants}
for concept in classes:
    images = data.export_concept_images(results.resolve(work_dir) / concept, concept, n=4, seed=seed)
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others)
    rows.append({"erased_class": concept, "method": "base model", "epochs": 0, "retained": "", **evaluation.judge_related(pipeline, classifier, table, concept, data.CLASS_GROUPS, generation)})
    for name, config in variants.items():
        result = fewshot.erase(pipeline, concept, images, config, progress_bar=False)
        seconds[name].append(result.optimization_seconds)
        rows += [{"erased_class": concept, "method": name, "epochs": e, "retained": ", ".join(result.info["retained"]),
                  **evaluation.judge_related(result.apply(pipeline, epoch=e), classifier, table, concept, data.CLASS_GROUPS, generation)} for e in eval_epochs]
    neighbours = fewshot.nearest_concepts(pipeline, concept, vocabulary, preserve_neighbours)
    edited = uce.erase(pipeline, concept, None, uce.UCEConfig(preserve=tuple(neighbours)), progress_bar=False)
    rows.append({"erased_class": concept, "method": "UCE (preserving the same neighbours)", "epochs": -1,
                 "retained": ", ".join(neighbours), **evaluation.judge_related(edited.apply(pipeline), classifier, table, concept, data.CLASS_GROUPS, generation)})
    print(concept, flush=True)

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "keep_the_neighbours.csv", sort_by=["erased_class", "method", "epochs"])
cost = {name: float(pd.Series(s).median()) for name, s in seconds.items()}
results.write_json({"median_optimization_seconds": cost, "time_ratio_preserved_to_plain": cost["preserved"] / cost["plain (paper)"]},
                   results_prefix + "keep_the_neighbours_cost.json")
table.groupby(["method", "epochs"])[["erased_share", "related_accuracy", "unrelated_accuracy"]].mean().round(3)

# %%
fig = plots.neighbour_front(pd.read_csv(results.resolve(results_prefix + "keep_the_neighbours.csv")))
results.save_figure(fig, figures_prefix + "keep_the_neighbours.png")

# %%
results.record_run(
    "notebooks/paper/12-keep-the-neighbours.ipynb",
    dict(model=model, classes=classes, epochs=epochs, eval_epochs=eval_epochs, preserve_weight=preserve_weight,
         preserve_neighbours=preserve_neighbours, seed=seed, n_erased=n_erased, n_others=n_others,
         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "keep_the_neighbours.csv", results_prefix + "keep_the_neighbours_cost.json", figures_prefix + "keep_the_neighbours.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

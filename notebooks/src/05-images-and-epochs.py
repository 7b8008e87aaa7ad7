# %% [markdown]
# # 05 · How many images and how many epochs? Zero-shot? (paper, Sec. 4.6)
#
# Three ablations of the paper, on every class: the erased share and the other classes' accuracy
# (1) against the epoch (checkpoints of one run per class), (2) against the number of real images
# (1, 2, 4, 8, 16) at the default number of epochs, and (3) for the zero-shot variant, where random
# latents replace the images. The per-step ascent loss of every run is kept for the loss figure,
# and the epoch sweep records the classifier-free probe loss that notebook 11's stopping rule reads.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, plots, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
classes: list = list(data.CLASSES)  # classes erased, one at a time
max_epochs: int = 10  # epochs of the epoch sweep (4 images)
image_counts: list = [1, 2, 4, 8, 16]  # numbers of real images compared
seed: int = 0  # picks the images and seeds the erasure
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 8  # generated images of every other class per evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/images-and-epochs"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
default = fewshot.FewShotConfig.builtin(seed=seed)
print(default, generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(model)
classifier = clf.load_classifier(CLASSIFIER_PATH)

# %%
epoch_rows, count_rows, loss_rows = [], [], []
for concept in classes:
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others)
    before = evaluation.judge(pipeline, classifier, table, [concept], generation)
    epoch_rows.append({"erased_class": concept, "epochs": 0, "probe_ratio": 1.0, **before})
    # (1) epochs: one run with a checkpoint after every epoch
    images = data.export_concept_images(results.resolve(work_dir) / concept / "4", concept, n=4, seed=seed)
    result = fewshot.erase(pipeline, concept, images, fewshot.FewShotConfig.builtin(seed=seed, epochs=max_epochs, keep_checkpoints=True), progress_bar=False)
    epoch_rows += [{"erased_class": concept, "epochs": e, "probe_ratio": result.info["probe_ratios"][e - 1],
                    **evaluation.judge(result.apply(pipeline, epoch=e), classifier, table, [concept], generation)} for e in range(1, max_epochs + 1)]
    loss_rows += [{"erased_class": concept, "run": "4 images", "step": i + 1, "loss": v} for i, v in enumerate(result.losses)]
    # (2) number of images, (3) zero-shot; the default number of epochs
    for n in image_counts:
        images = data.export_concept_images(results.resolve(work_dir) / concept / str(n), concept, n=n, seed=seed)
        result = fewshot.erase(pipeline, concept, images, default, progress_bar=False)
        count_rows.append({"erased_class": concept, "images": str(n), "steps": len(result.losses), **evaluation.judge(result.apply(pipeline), classifier, table, [concept], generation)})
    result = fewshot.erase(pipeline, concept, None, fewshot.FewShotConfig.builtin(seed=seed, zero_shot=True), progress_bar=False)
    count_rows.append({"erased_class": concept, "images": "zero-shot", "steps": len(result.losses), **evaluation.judge(result.apply(pipeline), classifier, table, [concept], generation)})
    loss_rows += [{"erased_class": concept, "run": "zero-shot", "step": i + 1, "loss": v} for i, v in enumerate(result.losses)]
    print(concept, flush=True)

# %%
epochs_table, counts_table, losses = pd.DataFrame(epoch_rows), pd.DataFrame(count_rows), pd.DataFrame(loss_rows)
results.write_csv(epochs_table, results_prefix + "fewshot_epochs.csv", sort_by=["erased_class", "epochs"])
results.write_csv(counts_table, results_prefix + "fewshot_image_counts.csv", sort_by=["erased_class", "images"])
results.write_csv(losses, results_prefix + "fewshot_losses.csv", sort_by=["erased_class", "run", "step"])
counts_table.groupby("images")[["erased_share", "others_accuracy", "steps"]].mean().round(3)

# %%
epochs_table.groupby("epochs")[["erased_share", "others_accuracy"]].agg(["mean", "min", "max"]).round(3)

# %%
fig = plots.epoch_curves(pd.read_csv(results.resolve(results_prefix + "fewshot_epochs.csv")))
results.save_figure(fig, figures_prefix + "fewshot_epochs.png")

# %%
fig = plots.loss_by_step(pd.read_csv(results.resolve(results_prefix + "fewshot_losses.csv")))
results.save_figure(fig, figures_prefix + "fewshot_losses.png")

# %%
results.record_run(
    "notebooks/paper/05-images-and-epochs.ipynb",
    dict(model=model, classes=classes, max_epochs=max_epochs, image_counts=image_counts, seed=seed, n_erased=n_erased,
         n_others=n_others, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, config=str(default)),
    [results_prefix + f for f in ("fewshot_epochs.csv", "fewshot_image_counts.csv", "fewshot_losses.csv")]
    + [figures_prefix + "fewshot_epochs.png", figures_prefix + "fewshot_losses.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

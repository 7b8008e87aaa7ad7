# %% [markdown]
# # 02 · Calibrating few-shot unlearning for the built-in model
#
# The paper's learning rate (1e-5, Adam, 4-5 epochs of 4 images at batch 2) is tuned for Stable
# Diffusion's 123M-parameter text encoder. The built-in encoder is far smaller, so we keep the
# paper's structure and sweep only the learning rate and the number of epochs: for every class,
# erase it with every learning rate, keep a checkpoint after every epoch, and measure the erased
# class's detection rate and the accuracy on the other nine classes. The defaults of
# `FewShotConfig.builtin()` are chosen from `results/fewshot_calibration.csv`.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, experiment, plots, results
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
classes: list = list(data.CLASSES)  # classes erased, one at a time
learning_rates: list = [3e-4, 1e-3, 3e-3]  # learning rates swept (1e-5 and 1e-4 left sneaker and trouser intact after 8 epochs in a first probe)
epochs: int = 12  # epochs per erasure
eval_epochs: list = [1, 2, 3, 4, 6, 8, 12]  # the epochs whose checkpoints are evaluated
n_images: int = 4  # real training images of the class (the paper's 4)
seed: int = 0  # picks the images and seeds the erasure
n_erased: int = 12  # generated images of the erased class per evaluation
n_others: int = 4  # generated images of every other class per evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/calibration"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
classes = experiment.check_classes(classes, classifier)

# %% [markdown]
# ## The sweep: erase, then judge every epoch's checkpoint with the same prompts and seeds

# %%
rows = []
for concept in classes:
    images = experiment.concept_images(images_dir, concept, n_images, seed, results.resolve(work_dir))
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others, classes=universe)
    before = evaluation.judge(pipeline, classifier, table, [concept], generation)
    rows += [{"erased_class": concept, "lr": lr, "epochs": 0, **before, "optimization_seconds": 0.0} for lr in learning_rates]
    for lr in learning_rates:
        config = experiment.fewshot_config(fewshot_settings, lr=lr, epochs=epochs, seed=seed, keep_checkpoints=True)
        result = fewshot.erase(pipeline, concept, images, config, progress_bar=False)
        for epoch in eval_epochs:
            scores = evaluation.judge(result.apply(pipeline, epoch=epoch), classifier, table, [concept], generation)
            rows.append({"erased_class": concept, "lr": lr, "epochs": epoch, **scores, "optimization_seconds": result.optimization_seconds * epoch / epochs})
    print(concept, f"before {before}", flush=True)

# %%
grid = pd.DataFrame(rows)
results.write_csv(grid, results_prefix + "fewshot_calibration.csv", sort_by=["erased_class", "lr", "epochs"])
summary = grid.groupby(["lr", "epochs"])[["erased_share", "others_accuracy"]].mean().reset_index()
results.write_csv(summary, results_prefix + "fewshot_calibration_summary.csv", sort_by=["lr", "epochs"])
choice = evaluation.choose_setting(summary, max_erased_share=0.10, max_others_drop=0.10)
print("chosen (lr, epochs):", choice)
summary.pivot(index="epochs", columns="lr", values=["erased_share", "others_accuracy"]).round(3)

# %% [markdown]
# ## The trade-off: erased share against the other classes' accuracy (mean over classes)

# %%
fig = plots.tradeoff(pd.read_csv(results.resolve(results_prefix + "fewshot_calibration_summary.csv")), group="lr", step="epochs")
results.save_figure(fig, figures_prefix + "fewshot_calibration.png")

# %%
results.record_run(
    "notebooks/paper/02-calibrate-fewshot.ipynb",
    dict(model=model, images_dir=images_dir, evaluator=evaluator, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         classes=classes, learning_rates=learning_rates, epochs=epochs, eval_epochs=eval_epochs, n_images=n_images, seed=seed,
         n_erased=n_erased, n_others=n_others, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "fewshot_calibration.csv", results_prefix + "fewshot_calibration_summary.csv", figures_prefix + "fewshot_calibration.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 04 · Which text-encoder parameters hold the concept? (paper, Sec. 4.5, claim 3)
#
# The paper varies which parameters of the text encoder are updated and finds the feed-forward
# (MLP) layers matter most. Here: every class erased with every option, at matched steps and the
# built-in learning rate, judged with the same prompts and seeds. Does the MLP finding hold on the
# built-in model? The table says so either way.

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
options: list = ["all", "mlp-only", "attn-only", "mlp-attn", "mlp-final-attn"]  # parameter options compared
seed: int = 0  # picks the images and seeds the erasure
n_images: int = 4  # real training images per erasure
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 8  # generated images of every other class per evaluation
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/which-parameters"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
print(experiment.fewshot_config(fewshot_settings), generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
classes = experiment.check_classes(classes, classifier)

# %%
rows = []
for concept in classes:
    images = experiment.concept_images(images_dir, concept, n_images, seed, results.resolve(work_dir))
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others, classes=universe)
    before = evaluation.judge(pipeline, classifier, table, [concept], generation)
    rows.append({"erased_class": concept, "option": "none (base model)", **before, "trainable_parameters": 0, "optimization_seconds": 0.0})
    for option in options:
        result = fewshot.erase(pipeline, concept, images, experiment.fewshot_config(fewshot_settings, trainable=option, seed=seed), progress_bar=False)
        after = evaluation.judge(result.apply(pipeline), classifier, table, [concept], generation)
        rows.append({"erased_class": concept, "option": option, **after,
                     "trainable_parameters": result.info["trainable_parameters"], "optimization_seconds": result.optimization_seconds})
    print(concept, flush=True)

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "parameter_options.csv", sort_by=["erased_class", "option"])
summary = table.groupby("option").agg(
    erased_share=("erased_share", "mean"), others_accuracy=("others_accuracy", "mean"),
    trainable_parameters=("trainable_parameters", "first"), optimization_seconds=("optimization_seconds", "median"),
).reset_index()
results.write_csv(summary, results_prefix + "parameter_options_summary.csv", sort_by=["option"])
summary.round(3)

# %%
fig = plots.option_bars(pd.read_csv(results.resolve(results_prefix + "parameter_options_summary.csv")))
results.save_figure(fig, figures_prefix + "parameter_options.png")

# %%
results.record_run(
    "notebooks/paper/04-which-parameters.ipynb",
    dict(model=model, images_dir=images_dir, evaluator=evaluator, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         classes=classes, options=options, seed=seed, n_images=n_images, n_erased=n_erased, n_others=n_others,
         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "parameter_options.csv", results_prefix + "parameter_options_summary.csv", figures_prefix + "parameter_options.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

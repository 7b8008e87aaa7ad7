# %% [markdown]
# # 08 · Can the erased concept be brought back? (the paper's own caveat, measured)
#
# Few-shot unlearning changes only the text encoder: the U-Net still holds the concept. Two
# attacks that leave the erased weights alone:
#
# (a) **other wordings** of the concept in the prompt (plural, a misspelling, an adjective, a
#     paraphrase from `data.PARAPHRASES`, ...);
# (b) **concept inversion** (Pham et al., ICLR 2024): Textual Inversion run against the *erased*
#     model, learning a new token's embedding from the same few images with a fixed step budget.
#
# For each class: the share of images the classifier assigns to the class, on the base model, after
# erasure, and under each attack, for few-shot unlearning and for the U-Net methods ESD-u and UCE
# (the same erasures as notebook 13: each is read back from `erasure_cache` when 13 saved it with
# the same settings, and trained and saved here otherwise). The inversion is also run against the
# base model (what the attack reaches when nothing was erased).

# %%
import time

import pandas as pd
import torch

from erasure_lib import attacks, data, evaluation, experiment, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import get_method
from erasure_lib.methods.base import erase_or_load
from erasure_lib.models import load_pipeline

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes erased and attacked, one at a time
methods: list = ["fewshot", "esd", "uce"]  # erasure methods attacked
esd_train_method: str = "noxattn"  # ESD-u, as in notebook 13
esd_iterations: int = 200  # ESD iterations, as in notebook 13
esd_lr: float = 1e-4  # ESD learning rate, as in notebook 13
seed: int = 0  # picks the images and seeds erasure and attack
n_images: int = 4  # real training images (erasure and inversion use the same ones)
n_eval: int = 16  # generated images per prompt set
inversion_steps: int = 200  # the attack's step budget
inversion_lr: float = 5e-3  # the attack's learning rate
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
work_dir: str = "build/robustness"  # where the few-shot image sets are written
erasure_cache: str = "build/erasures"  # saved erasures shared with notebook 13

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
inversion = attacks.InversionConfig(steps=inversion_steps, lr=inversion_lr, seed=seed)
configs = experiment.method_configs(fewshot_settings, seed, esd_train_method, esd_iterations, esd_lr)
print(*(configs[m] for m in methods), inversion, generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
classes = experiment.check_classes(classes, classifier)

# %%
rows = []
for concept in classes:
    # the same images as notebook 13, so the saved erasures match
    images = experiment.concept_images(images_dir, concept, n_images, seed, results.resolve(work_dir))
    targets = {"base": pipeline}
    for method in methods:
        result = erase_or_load(get_method(method), pipeline, concept, images, configs[method],
                               results.resolve(erasure_cache) / method / concept, base_model=model)
        targets[method] = result.apply(pipeline)
    for variant, wording in attacks.prompt_variants(concept, data.PARAPHRASES.get(concept)).items():
        table = evaluation.wording_table(concept, wording, n_eval, classes=universe)
        for name, p in targets.items():
            share = evaluation.summarize(evaluation.classify_generated(p, classifier, table, generation), [concept])["erased_share"]
            rows.append({"erased_class": concept, "attack": f"wording: {variant}", "target": name, "share": share})
    for name, p in targets.items():
        attacked = attacks.invert_concept(p, images, inversion)
        table = evaluation.wording_table(concept, inversion.placeholder, n_eval, classes=universe)
        share = evaluation.summarize(evaluation.classify_generated(attacked, classifier, table, generation), [concept])["erased_share"]
        rows.append({"erased_class": concept, "attack": "concept inversion", "target": name, "share": share})
    print(concept, flush=True)

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "robustness.csv", sort_by=["erased_class", "attack", "target"])
summary = table.pivot_table(index="attack", columns="target", values="share", aggfunc="mean")[["base", *methods]].reset_index()
results.write_csv(summary, results_prefix + "robustness_summary.csv", sort_by=["attack"])
summary.round(3)

# %%
results.record_run(
    "notebooks/paper/08-robustness.ipynb",
    dict(model=model, images_dir=images_dir, evaluator=evaluator, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         classes=classes, methods=methods, esd_train_method=esd_train_method, esd_iterations=esd_iterations,
         esd_lr=esd_lr, seed=seed, n_images=n_images, n_eval=n_eval, inversion_steps=inversion_steps,
         inversion_lr=inversion_lr, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "robustness.csv", results_prefix + "robustness_summary.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

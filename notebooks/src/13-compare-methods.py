# %% [markdown]
# # 13 · Few-shot unlearning against ESD and UCE (paper, Sec. 4.1-4.3)
#
# The paper's case rests on a comparison: its method against U-Net-based erasure on the 10
# Imagenette objects, on preserved quality and on time. Here on the built-in model, every method
# judged by the same code on the same prompts and seeds, in one run: the erased class's detection
# rate, the other classes' accuracy, FID and KID of the generated evaluation set against real
# held-out images (standard TF-Inception features), CLIP score of each image against its prompt
# (the built-in small CLIP of `notebooks/00-train-clip-evaluator.ipynb`; CLIP ViT-L/14 for SD), and
# erasure time (optimization loop and total). Each erasure is saved under `erasure_cache`, where
# notebook 08 reads the same ESD and UCE results back for its attacks. FID, KID and CLIP score are
# over the other classes' prompts, or over `quality_prompts` when given (the paper's COCO-30k).
#
# ESD's published defaults are 1000 iterations at lr 1e-5 for SD's U-Net; `esd_iterations` and
# `esd_lr` record what this run used on the built-in model. With the sd14 parameters the same cells
# run on Stable Diffusion v1.4 with Imagenette images (`images_dir`), EVA02 (`evaluator`), CLIP
# ViT-L/14, the paper's few-shot settings, and COCO prompts and images for FID and CLIP score.

# %%
import time

import pandas as pd
import torch

from erasure_lib import data, evaluation, experiment, plots, results
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.methods import get_method
from erasure_lib.methods.base import erase_or_load
from erasure_lib.metrics import clip_score as cs
from erasure_lib.metrics import fid
from erasure_lib.models import load_pipeline

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot and FID images: 'builtin' (Fashion-MNIST) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes erased, one at a time
methods: list = ["fewshot", "esd", "uce"]  # methods compared
esd_train_method: str = "noxattn"  # ESD-u, the paper's setting for objects
esd_iterations: int = 200  # ESD iterations (published default 1000)
esd_lr: float = 1e-4  # ESD learning rate (published default 1e-5)
seed: int = 0  # picks the images and seeds every method
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 8  # generated images of every other class per evaluation
n_real: int = 1000  # real held-out images for FID / KID
fid_reference: str = "builtin"  # real images for FID / KID: 'builtin' (Fashion-MNIST test set) or a folder
quality_prompts: str = ""  # prompt CSV for FID and CLIP score (columns case_number, prompt, evaluation_seed); empty: the other classes
n_quality: int = 1000  # prompts used from quality_prompts (the first n)
clip_model: str = "models/clip"  # CLIP for the CLIP score: a folder (from the repo root) or a hub id
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/compare-methods"  # where the few-shot image sets are written
erasure_cache: str = "build/erasures"  # where each erasure is saved (and read back by notebook 08)

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
configs = experiment.method_configs(fewshot_settings, seed, esd_train_method, esd_iterations, esd_lr)
print(*(configs[m] for m in methods), generation, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(experiment.model_source(model), device=device, dtype=experiment.torch_dtype(dtype))
classifier = experiment.load_evaluator(evaluator, device)
universe = experiment.evaluator_classes(classifier)
classes = experiment.check_classes(classes, classifier)
inception = fid.load_inception()
clip_model_, clip_processor = cs.load_clip(clip_model, device)
real_features = fid.inception_features(inception, experiment.reference_images(fid_reference, n_real, seed))
quality = experiment.quality_prompts(quality_prompts, n_quality)

# %%
rows = []
for concept in classes:
    images = experiment.concept_images(images_dir, concept, 4, seed, results.resolve(work_dir))
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others, classes=universe)
    for method in ["base model", *methods]:
        if method == "base model":
            erased, optimization, total = pipeline, 0.0, 0.0
        else:
            result = erase_or_load(get_method(method), pipeline, concept, images, configs[method],
                                   results.resolve(erasure_cache) / method / concept, base_model=model)
            erased, optimization, total = result.apply(pipeline), result.optimization_seconds, result.total_seconds
        generated = generate(erased, list(table.prompt), list(table.evaluation_seed), generation, progress_bar=False)
        classified = evaluation.classify_images(classifier, table, generated)
        clip = cs.clip_score(clip_model_, clip_processor, generated, list(table.prompt))
        if quality is None:
            features, clip_quality = fid.inception_features(inception, generated), clip[(table["class"] != concept).to_numpy()]
        else:
            scored = generate(erased, list(quality.prompt), list(quality.evaluation_seed), generation, progress_bar=False)
            features, clip_quality = fid.inception_features(inception, scored), cs.clip_score(clip_model_, clip_processor, scored, list(quality.prompt))
        rows.append({"method": method, "erased_class": concept, **evaluation.summarize(classified, [concept]),
                     "fid": fid.fid_from_features(features, real_features), "kid": fid.kid_from_features(features, real_features)[0],
                     "clip_score": cs.reported_clip_score(clip_quality),
                     "clip_score_erased": cs.reported_clip_score(clip[(table["class"] == concept).to_numpy()]),
                     "optimization_seconds": optimization, "total_seconds": total})
    print(concept, flush=True)

# %%
comparison = pd.DataFrame(rows)
columns = ["method", "erased_class", "erased_share", "others_accuracy", "fid", "kid", "clip_score", "clip_score_erased",
           "optimization_seconds", "total_seconds"]
results.write_csv(comparison[columns], results_prefix + "object_erasure_comparison.csv", sort_by=["method", "erased_class"])
comparison.groupby("method")[columns[2:]].mean().round(3)

# %%
fig = plots.method_comparison(pd.read_csv(results.resolve(results_prefix + "object_erasure_comparison.csv")))
results.save_figure(fig, figures_prefix + "object_erasure_comparison.png")

# %%
results.record_run(
    "notebooks/paper/13-compare-methods.ipynb",
    dict(model=model, images_dir=images_dir, evaluator=evaluator, fewshot_settings=fewshot_settings, device=device, dtype=dtype,
         classes=classes, methods=methods, esd_train_method=esd_train_method, esd_iterations=esd_iterations, esd_lr=esd_lr,
         seed=seed, n_erased=n_erased, n_others=n_others, n_real=n_real, fid_reference=fid_reference, quality_prompts=quality_prompts,
         n_quality=n_quality, clip_model=clip_model, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + "object_erasure_comparison.csv", figures_prefix + "object_erasure_comparison.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

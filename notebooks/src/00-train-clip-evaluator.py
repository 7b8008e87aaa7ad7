# %% [markdown]
# # 00 · Train the built-in CLIP evaluator
#
# The paper scores preserved quality with CLIP score, the cosine of CLIP's normalized image and text
# features (`openai/clip-vit-large-patch14` for Stable Diffusion). No CLIP weights can be downloaded
# here, so the built-in world gets its own small `transformers.CLIPModel` (ViT on 32 px images, a
# 4-layer text tower on CLIP's real vocabulary), trained with CLIP's symmetric InfoNCE loss on
# real Fashion-MNIST renders in the three styles, each paired with a caption from the paper's
# templates. The same `erasure_lib.metrics.clip_score` code then scores both models.
#
# Re-running it with the default parameters regenerates `models/clip/`.

# %%
import time

import numpy as np
import pandas as pd
import torch
from transformers import CLIPTokenizer

from erasure_lib import data, plots, results
from erasure_lib.builtin import clip as cs
from erasure_lib.paths import BUILTIN_MODEL_DIR

# %% tags=parameters
seed: int = 0  # seed of every random draw in training
steps: int = 1200  # optimizer steps (batch 128)
text_layers: int = 4  # transformer layers of the text tower (8 for the larger-encoder stand-in)
text_hidden_size: int = 128  # width of the text tower (heads of 32 channels, feed-forward 4x wide)
n_eval: int = 500  # held-out test images per style for the retrieval check
threads: int = 2  # torch CPU threads
clip_dir: str = "models/clip"  # where the model is saved (relative to the repo root)
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
checkpoint: str = "runs/builtin-clip.pt"  # resumable training state

# %%
torch.set_num_threads(threads)
config = cs.ClipTrainConfig(seed=seed, steps=steps, text_layers=text_layers, text_hidden_size=text_hidden_size,
                            text_heads=text_hidden_size // 32, text_intermediate_size=4 * text_hidden_size)  # fmt: skip
print(config)
t_start = time.perf_counter()
tokenizer = CLIPTokenizer.from_pretrained(BUILTIN_MODEL_DIR / "tokenizer")
train = data.load_fashion_mnist("train")
test = data.load_fashion_mnist("test")

# %% [markdown]
# ## Training: symmetric InfoNCE on (render, caption) pairs

# %%
t_train = time.perf_counter()
model, losses = cs.train_small_clip(config, train, tokenizer, checkpoint=results.resolve(checkpoint))
train_seconds = time.perf_counter() - t_train
fig = plots.loss_curves({"small CLIP: InfoNCE loss": losses}, log_scale=False)
results.save_figure(fig, figures_prefix + "clip_evaluator_training_loss.png")
print(f"final loss (mean of the last 50 steps) {np.mean(losses[-50:]):.3f}; {train_seconds:.0f} s")

# %%
folder = cs.save_small_clip(model, tokenizer, results.resolve(clip_dir), config,
                            extra={"final_loss": float(np.mean(losses[-50:])), "train_seconds": train_seconds})

# %% [markdown]
# ## Held-out check: does the text tower pick the right caption?
#
# Held-out test images in each style, scored against the evaluation prompt of every class in that
# style ("a photo of a {class}", "a photo of a {class} in the style of sketch"): top-1 zero-shot
# accuracy over the 10 classes, and the mean CLIP score (cosine) of the true prompt and of a wrong one.

# %%
model, _ = cs.load_clip(folder)  # checked as saved: float16 on disk, float32 in memory
check = cs.zero_shot_check(model, tokenizer, test, n_eval, seed=seed)
results.write_csv(check, results_prefix + "clip_evaluator_check.csv", sort_by=["style"])
check

# %%
results.record_run(
    "notebooks/00-train-clip-evaluator.ipynb",
    dict(seed=seed, steps=steps, text_layers=text_layers, text_hidden_size=text_hidden_size, n_eval=n_eval),
    [clip_dir, results_prefix + "clip_evaluator_check.csv", figures_prefix + "clip_evaluator_training_loss.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)
pd.Series({"saved to": str(folder), "seconds": round(time.perf_counter() - t_start)})

# %% [markdown]
# # Erasing a concept from a text-to-image model, in seconds, from four images
#
# A text-to-image diffusion model such as Stable Diffusion has three parts:
#
# * a **text encoder** (CLIP) that turns the prompt into a sequence of vectors,
# * a **U-Net** that, given a noisy image latent `z_t`, the noise level `t` and those vectors,
#   predicts the noise `eps` that was added — drawing an image is removing noise step by step,
# * a **VAE** that maps images to the small latents the U-Net works on, and back.
#
# It is trained by making the predicted noise match the real one, the *denoising loss*
# `|| eps_theta(z_t, t, E(prompt)) - eps ||^2`, on images and their captions.
#
# Fuchi & Takagi (BMVC 2024) erase a concept — say, "sneaker" — by running that training
# **backwards** on a handful of real sneaker images: gradient *ascent* on the denoising loss, and
# **only the text encoder** is updated. After a few steps the words "a photo of a sneaker" no longer
# steer the U-Net towards sneakers, and the U-Net itself is untouched. No anchor concept
# ("draw a shoe instead") is given: the paper reports that the prompt drifts to something related
# that the model already knows.
#
# This notebook does it end to end on the repository's built-in model, a small Stable Diffusion
# trained on Fashion-MNIST garments. It needs nothing but this repository and its pinned packages
# (the few real images it uses are shipped with it) and runs on a laptop CPU in a minute or two.

# %%
# NBVAL_IGNORE_OUTPUT
# (library warnings on import)
import collections

import matplotlib.pyplot as plt
import numpy as np
import torch

from erasure_lib import data, plots
from erasure_lib.generate import GenerationConfig, generate_grid
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT

# %% [markdown]
# ## 0. Parameters
#
# Change these and re-run the notebook (the exercises at the end do), or pass them to papermill:
# `papermill -p concept bag 01-erase-a-concept.ipynb out.ipynb`.

# %% tags=parameters
concept: str = "sneaker"  # the garment class to erase (one of erasure_lib.data.CLASSES)
neighbours: list = ["sandal", "ankle boot", "trouser"]  # classes that should survive: two related to the default concept (footwear), one not
synonym: str = ""  # another word for the concept, judged as the concept (exercise 2); "" for none
erase_seed: int = 0  # seed of the erasure: the templates, noise levels and image flips it draws
generation_seeds: list = [0, 1, 2, 3, 4, 5, 6, 7]  # one generated image per seed and prompt
num_inference_steps: int = 20  # sampling steps (PNDM) for every generated image
guidance_scale: float = 7.5  # classifier-free guidance scale
long_steps: int = 32  # optimizer steps of the "keep going" run of section 5 (the calibrated erasure takes 16)
erased_at: float = 0.25  # the concept counts as erased when its erased share is at most this
hurt_drop: float = 0.25  # a neighbour counts as hurt when its share falls by at least this much
threads: int = 2  # torch CPU threads

# %%
torch.set_num_threads(threads)
neighbours = [n for n in neighbours if n != concept]
rows = [concept, *neighbours] + ([synonym] if synonym else [])  # the words we prompt with
judged_as = [concept, *neighbours] + ([concept] if synonym else [])  # the class each row should show
prompts = [f"a photo of a {word}" for word in rows]
SAMPLE_DIR = REPO_ROOT / "notebooks" / "tutorials" / "data" / "fashion-mnist-sample"
folder = SAMPLE_DIR / concept.replace(" ", "_")
print("erasing:", repr(concept), "| watching:", neighbours, "| prompts:", prompts)

# %% [markdown]
# ## 1. The model and what it draws
#
# `load_pipeline("builtin")` returns an ordinary diffusers `StableDiffusionPipeline`: the same call
# takes a local folder or a hub id such as `CompVis/stable-diffusion-v1-4`.

# %%
# NBVAL_IGNORE_OUTPUT
# (loading progress bars)
pipeline = load_pipeline("builtin")

# %%
classifier = clf.load_classifier(CLASSIFIER_PATH)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
print(type(pipeline).__name__, "| text encoder:", pipeline.text_encoder.config.num_hidden_layers, "layers,",
      f"{sum(p.numel() for p in pipeline.text_encoder.parameters()) / 1e6:.1f}M parameters")

# %%
before = generate_grid(pipeline, prompts, generation_seeds, generation, progress_bar=False)
fig = plots.image_grid(before, prompts, title="before erasure")

# %% [markdown]
# ### How we measure
#
# The project ships a classifier of the ten garment classes, trained on real images: our **judge**.
# For each prompt "a photo of a X" we generate one image per seed and count:
#
# * **share** of X — the fraction of those images the judge names X (0 = none, 1 = all).
# * **erased share** — the share of the erased concept. **Low means erased**: 0 says no image
#   drawn from the concept's prompt is still recognised as the concept. Before erasure it is near 1;
#   we call the concept **erased** when it is at most `erased_at` (0.25: 2 images in 8).
# * **kept share** — the share of a neighbour. **High means kept.** A neighbour is **hurt** when its
#   kept share falls by at least `hurt_drop` (with 8 seeds, 0.25 is 2 images).

# %%
def names_of(images):
    """The judge's class name for each image."""
    probs, _ = clf.classify(classifier, images)
    return [data.CLASSES[k] for k in probs.argmax(1)]


def shares(grid):
    """The share of each row's images that the judge names as that row's class."""
    return [sum(n == name for n in names_of(row)) / len(row) for row, name in zip(grid, judged_as)]


shares_before = shares(before)
print("before:", {p: round(s, 2) for p, s in zip(prompts, shares_before)})

# %% [markdown]
# ## 2. Four real images of the concept
#
# Few-shot unlearning needs a handful of real images. The repository ships 4 real Fashion-MNIST
# images of each class in `notebooks/tutorials/data/fashion-mnist-sample/` (MIT licence, Zalando SE;
# see the `README.md` and `LICENSE` there): a folder per class, exactly as a user would provide one.
# With the full dataset installed (Debian's `dataset-fashion-mnist`, or any folder named by the
# environment variable `ERASURE_FASHION_MNIST`), `data.export_concept_images(folder, concept, n, seed)`
# writes other sets.

# %%
images = data.load_concept_images(folder)
print("files:", sorted(p.name for p in folder.glob("*.png")))  # class, rendering, index in the training split
fig = plots.image_grid([images], [f"{len(images)} real images"], cell=1.0)

# %% [markdown]
# ## 3. Erase
#
# Each step: encode the images with the VAE (once), fill a random template ("a photo of a {}",
# "a rendering of a {}", ... the paper's 27) with the concept, add noise at a random level `t`,
# and take an optimizer step on **minus** the denoising loss with respect to the text encoder's
# feed-forward layers and its last attention layer (the paper's default, `mlp-final-attn`). Four
# images at batch 2 make two steps per epoch; the built-in settings (notebook 02's calibration) train
# 8 epochs at lr 3e-4, 16 steps.

# %%
config = fewshot.FewShotConfig.builtin(seed=erase_seed)
print({k: getattr(config, k) for k in ("trainable", "optimizer", "lr", "batch_size", "epochs", "seed")})  # help(fewshot.FewShotConfig): all options
result = fewshot.erase(pipeline, concept, folder, config, progress_bar=False)
print(f"{len(result.losses)} steps; optimization took {result.optimization_seconds:.1f} s")  # the time is sanitized by nbval

# %% [markdown]
# The **ascent loss** is the *negated* denoising loss of each step's batch, so it goes *down* as
# the model gets worse at denoising the concept's images given the concept's words. It is noisy:
# each step draws its own noise levels and templates.

# %%
print("ascent loss per step:", [round(v, 2) for v in result.losses])

# %% [markdown]
# > **Why ascent on the denoising loss erases — and why nothing stops it.**
# > The U-Net learned to predict the noise *given* the prompt's vectors; for the concept's words
# > those vectors are what makes its prediction on the concept's images good. Ascent changes the
# > text encoder so that the same words make that prediction *worse*: their vectors are pushed away
# > from whatever helped the U-Net draw the concept. The U-Net still can; the words no longer ask it.
# >
# > Ordinary training has a fixed point: the loss cannot fall below zero and stops improving once
# > the prediction is as good as it gets. Ascent has none — the loss is maximised without bound,
# > every step pushes the encoder further, and the layers it changes are shared by every other word.
# > **The user must stop it.** The paper trains a fixed number of epochs; this library also keeps
# > per-step checkpoints, `FewShotConfig(checkpoint_steps=(2, 4, 8))` then
# > `result.apply(pipeline, step=4)`, and offers a classifier-free stopping rule,
# > `FewShotConfig(stop_loss_ratio=..., stop_retain_drift=..., stop_check="step", stop_retain=(...))`.
# > Section 5 tries both.

# %% [markdown]
# ## 4. Same prompts, same seeds, erased text encoder
#
# `result.apply(pipeline)` builds a new pipeline with the erased text encoder; the original
# pipeline is untouched (the U-Net and VAE are shared, and were never changed).

# %%
after = generate_grid(result.apply(pipeline), prompts, generation_seeds, generation, progress_bar=False)
fig = plots.image_grid(after, prompts, title=f"after erasing {concept!r} ({len(result.losses)} steps)")

# %%
def report(shares_after, label):
    """Print each row's share before and after, and name the hurt neighbours."""
    for prompt, b, a in zip(prompts, shares_before, shares_after):
        print(f"{prompt:>28}: share {b:.2f} before, {a:.2f} {label}")
    hurt = [n for n, b, a in zip(neighbours, shares_before[1:], shares_after[1:]) if b - a >= hurt_drop]
    erased = "erased" if shares_after[0] <= erased_at else f"NOT erased (erased share above {erased_at})"
    print(f"-> {concept!r} {erased}: erased share {shares_after[0]:.2f}; hurt neighbours: {hurt or 'none'}")


shares_after = shares(after)
report(shares_after, f"after {len(result.losses)} steps")

# %% [markdown]
# What did the erased prompt become? The judge's verdict on its images, and whether the most common
# class is related to the concept (same group of `data.CLASS_GROUPS`: tops, footwear, ...). The
# judge also names the rendering: the built-in model was trained on garments drawn plain (grey on
# black), as sketches and in sepia, so an erased prompt may drift in style as well as in class.

# %%
became = collections.Counter(names_of(after[0]))
top, n_top = became.most_common(1)[0]
group = next(g for g, members in data.CLASS_GROUPS.items() if concept in members)
_, style_probs = clf.classify(classifier, after[0])  # the judge also names the rendering: plain, sketch or sepia
print(f"{prompts[0]!r} now draws: {dict(became.most_common())}")
print("  in the rendering:", dict(collections.Counter(data.STYLES[k] for k in style_probs.argmax(1)).most_common()))
if top == concept:
    print(f"still mostly {concept} ({n_top} of {len(after[0])}): the erasure did not take at these settings")
else:
    kind = f"related (also {group})" if top in data.CLASS_GROUPS[group] else f"not related ({concept} is {group})"
    print(f"mostly {top} ({n_top} of {len(after[0])}): {kind}")

# %% [markdown]
# ## 5. Nothing stops it: keep going
#
# The same erasure (same seed, so its first steps are section 3's), run for `long_steps` steps,
# keeping a checkpoint where section 3 stopped and measuring two classifier-free probes after every step:
#
# * **concept probe** — the denoising loss of the concept's prompts on its own 4 images (fixed noise),
#   divided by its value before erasure. 1 = unchanged; **higher = more erased**.
# * **retain drift** — how far the U-Net's prediction for the neighbours' prompts has moved, relative
#   to how much those prompts change the prediction at all. 0 = untouched; **lower is better**.

# %%
n_default = len(result.losses)
longer = fewshot.FewShotConfig.builtin(seed=erase_seed, epochs=-(-long_steps // 2), checkpoint_steps=(n_default,),
                                       stop_check="step", stop_retain=tuple(neighbours))
long_result = fewshot.erase(pipeline, concept, folder, longer, progress_bar=False)
trace = long_result.info["probe_trace"]
print("concept probe:", [round(e["concept_loss_ratio"], 2) for e in trace])
print("retain drift: ", [round(e["retain_drift"], 2) for e in trace])
erased_weights = result.components["text_encoder"].state_dict()
same = all(torch.equal(w, erased_weights[k]) for k, w in long_result.step_checkpoints[n_default].items())
rises = all(b["concept_loss_ratio"] > a["concept_loss_ratio"] for a, b in zip(trace, trace[1:]))
print(f"checkpoint after step {n_default} equals section 3's erasure: {same}; concept probe rose at every step: {rises}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
steps = [e["step"] for e in trace]
axes[0].plot(steps, [e["concept_loss_ratio"] for e in trace], marker="o")
axes[0].set_ylabel("concept probe: loss / loss before\n(higher is better for erasing)")
axes[1].plot(steps, [e["retain_drift"] for e in trace], marker="o", color="tab:red")
axes[1].set_ylabel("retain drift of the neighbours\n(lower is better)")
for ax in axes:
    ax.axvline(n_default, color="0.5", linestyle="--", label="section 3 stopped here")
    ax.set_xlabel("optimizer step")
    ax.set_xticks(steps[1::2])
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=8)
fig.tight_layout()

# %%
long_after = generate_grid(long_result.apply(pipeline), prompts, generation_seeds, generation, progress_bar=False)
fig = plots.image_grid(long_after, prompts, title=f"after {len(long_result.losses)} steps")
shares_long = shares(long_after)
report(shares_long, f"after {len(long_result.losses)} steps")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, max(len(neighbours), 1)]})
stages = {"before": shares_before, f"after {n_default} steps": shares_after, f"after {len(long_result.losses)} steps": shares_long}
x = np.arange(len(neighbours))
for k, (label, values) in enumerate(stages.items()):
    left.bar_label(left.bar(k, values[0], color=f"C{k}"), fmt="%.2f", fontsize=7)
    right.bar_label(right.bar(x + (k - 1) * 0.27, values[1 : 1 + len(neighbours)], 0.27, color=f"C{k}", label=label), fmt="%.2f", fontsize=7)
left.set_xticks([0, 1, 2], list(stages), rotation=20, fontsize=8)
left.set_ylabel(f"share of '{concept}' images still\nrecognised (lower is better)")
right.set_xticks(x, neighbours)
right.set_ylabel("share of each neighbour's images\nrecognised (higher is better)")
right.legend(fontsize=7, ncol=3, loc="upper center")
for ax in (left, right):
    ax.set_ylim(0, 1.3)
fig.tight_layout()

# %% [markdown]
# **Stopping without a judge.** The probes need no classifier, so they can stop the run:
# `stop_loss_ratio` ends it once the concept probe reaches that multiple of its start,
# `stop_retain_drift` once the neighbours' drift reaches that value, whichever comes first.
# The thresholds below are for illustration; `notebooks/paper/16-stopping-rule.ipynb` calibrates them
# on some concepts and seeds and tests them on others. A rule can only stop; it cannot undo damage
# done before it fires.

# %%
rule = fewshot.FewShotConfig.builtin(seed=erase_seed, epochs=-(-long_steps // 2), stop_loss_ratio=1.5,
                                     stop_retain_drift=3.0, stop_check="step", stop_retain=tuple(neighbours))
stopped = fewshot.erase(pipeline, concept, folder, rule, progress_bar=False)
print(f"stopped after {stopped.info['steps_run']} of at most {len(long_result.losses)} steps: {stopped.info['stop_reason']}")

# %% [markdown]
# ## 6. What to take away
#
# * Only the text encoder changed; the U-Net still *can* draw the concept — it is just no longer
#   asked to by its words. A different prompt or a learned embedding may bring it back (the paper's
#   own caveat; measured in `notebooks/paper/08-robustness.ipynb`).
# * The number of steps is the user's choice and it matters: gradient ascent has no fixed point, and
#   more steps also move other concepts. On this small model the damage is broad: the calibration in
#   `notebooks/paper/02-calibrate-fewshot.ipynb` finds no learning rate and epoch count that erases
#   every class while keeping the others, and single erasures are all-or-nothing, class by class and
#   seed by seed (`results/fewshot_object_erasure.csv` has all ten classes over five seeds, two
#   parameter options and two wordings).
# * `FewShotConfig(preserve_weight=..., preserve_neighbours=...)` adds an optional term (not in the
#   paper) that anchors the text embeddings of neighbouring concepts; notebook 12 measures it.
# * `result.save("erased/sneaker", base_model="builtin")` writes the erased encoder in the usual
#   transformers format; `python -m erasure_lib erase ...` does all of this from the shell.

# %% [markdown]
# ## 7. Exercises
#
# Change the parameters cell, then *Run All*. Expected outcomes are what we saw on this model;
# yours may differ in detail — that is part of the lesson.
#
# 1. **Another class.** `concept = "bag"`, `neighbours = ["trouser", "coat", "sandal"]`; then `"shirt"`
#    with `["t-shirt", "pullover", "trouser"]`. *Expect:* the 16 calibrated steps do not fit every
#    class. In our runs the bag did not move in 16 steps (and hardly in the 32 of section 5); the
#    shirt was erased in 16 steps, its prompt moving to a related class (t-shirt), but it took
#    t-shirt and pullover down with it. Try `erase_seed = 1` too: the same class can come out
#    differently at another seed (in our runs the sneaker was erased with no neighbour hurt, its
#    prompt moving to sandal; the bag's 32-step run erased it there, taking trouser with it).
# 2. **A synonym.** `synonym = "running shoe"` with the default concept, then `concept = "ankle boot"`,
#    `neighbours = ["sneaker", "sandal", "bag"]`, `synonym = "boot"`. *Expect:* the built-in model
#    learned only the ten class names, so "running shoe" draws no sneakers even *before* erasure —
#    there is nothing to erase, and its row says nothing about the method (always check the
#    before row). "boot" is part of "ankle boot" and draws ankle boots before; it tends to fall
#    with the class, since the two prompts share a token and only the text encoder changed — the
#    flip side of the paper's caveat that concepts sharing words move together.
# 3. **More sampling steps.** `num_inference_steps = 50`. *Expect:* a longer run (every image costs
#    2.5 times as many U-Net calls). The before rows hardly change, but the erasure can look
#    different: in our runs the 16-step erasure still erased the sneaker (0.12) and hurt no
#    neighbour at 50 steps, while at 20 steps sandal and ankle boot fell to 0.62 and 0.75. The
#    built-in settings were chosen judging at 50 steps (notebook 02), as every paper notebook
#    judges; judge an erasure at the sampling settings you will use.

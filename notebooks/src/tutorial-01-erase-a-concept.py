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
# trained on Fashion-MNIST garments. Everything runs on a CPU in about a minute.

# %%
# NBVAL_IGNORE_OUTPUT
# (library warnings on import)
import torch

from erasure_lib import data, plots
from erasure_lib.generate import GenerationConfig, generate_grid
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT

torch.set_num_threads(2)

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
generation = GenerationConfig(num_inference_steps=20, guidance_scale=7.5)
print(type(pipeline).__name__, "| text encoder:", pipeline.text_encoder.config.num_hidden_layers, "layers,",
      f"{sum(p.numel() for p in pipeline.text_encoder.parameters()) / 1e6:.1f}M parameters")

# %%
concept = "sneaker"
seeds = list(range(8))
prompts = [f"a photo of a {c}" for c in ("sneaker", "sandal", "ankle boot", "trouser")]
before = generate_grid(pipeline, prompts, seeds, generation, progress_bar=False)
plots.image_grid(before, prompts, title="before erasure")

# %% [markdown]
# The project ships a classifier of the ten garment classes (trained on real images); it is our
# "judge". It names most of the sneakers as sneakers:

# %%
def share_of(images, name):
    """Share of images the classifier names `name`."""
    probs, _ = clf.classify(classifier, images)
    return (probs.argmax(1) == data.CLASSES.index(name)).mean()


print(f"before: {share_of(before[0], 'sneaker'):.2f} of the 'sneaker' images are classified as sneakers")

# %% [markdown]
# ## 2. Four real images of the concept
#
# Few-shot unlearning needs a handful of real images: here 4 sneakers from the Fashion-MNIST
# training set, written to a folder exactly as a user would provide them.

# %%
folder = REPO_ROOT / "build" / "tutorial" / "sneaker-images"
image_paths = data.export_concept_images(folder, concept, n=4, seed=0)
plots.image_grid([data.load_concept_images(image_paths)], ["the 4 images"])

# %% [markdown]
# ## 3. Erase
#
# Each step: encode the images with the VAE (once), fill a random template ("a photo of a {}",
# "a rendering of a {}", ... the paper's 27) with the concept, add noise at a random level `t`,
# and take an optimizer step on **minus** the denoising loss with respect to the text encoder's
# feed-forward layers and its last attention layer (the paper's default, `mlp-final-attn`). Four
# images at batch 2 make two steps per epoch.

# %%
config = fewshot.FewShotConfig.builtin(seed=0)
print(config)
result = fewshot.erase(pipeline, concept, folder, config, progress_bar=False)
print(f"{len(result.losses)} steps; optimization took {result.optimization_seconds:.1f} s")  # the time is sanitized by nbval

# %% [markdown]
# The loss is the *negated* denoising loss, so it goes down as the model gets worse at denoising
# sneakers given the word "sneaker":

# %%
print("ascent loss per step:", [round(v, 2) for v in result.losses])

# %% [markdown]
# ## 4. Same prompts, same seeds, erased text encoder
#
# `result.apply(pipeline)` builds a new pipeline with the erased text encoder; the original
# pipeline is untouched (the U-Net and VAE are shared, and were never changed).

# %%
erased = result.apply(pipeline)
after = generate_grid(erased, prompts, seeds, generation, progress_bar=False)
plots.image_grid(after, prompts, title="after erasing 'sneaker'")

# %%
for name, row_before, row_after in zip(("sneaker", "sandal", "ankle boot", "trouser"), before, after):
    print(f"{name:>10}: classified as {name} before {share_of(row_before, name):.2f}, after {share_of(row_after, name):.2f}")

# %% [markdown]
# What did the sneaker prompt become? The classifier's verdict on the erased prompt's images:

# %%
probs, _ = clf.classify(classifier, after[0])
print({data.CLASSES[k]: int(n) for k, n in enumerate(torch.bincount(torch.from_numpy(probs.argmax(1)), minlength=10)) if n})

# %% [markdown]
# ## 5. What to take away
#
# * Only the text encoder changed; the U-Net still *can* draw sneakers — it is just no longer
#   asked to by the word "sneaker". A different prompt or a learned embedding may bring them back
#   (the paper's own caveat; measured in the analyses notebooks).
# * The number of steps matters: gradient ascent has no fixed point, and too many steps also
#   damage other concepts. On this small model the damage is broad: the calibration in
#   `notebooks/paper/02-calibrate-fewshot.ipynb` finds no learning rate and epoch count that
#   erases every class while keeping the others, and the sneaker is one of the easy classes
#   (`results/fewshot_object_erasure.csv` has all ten). The built-in defaults are the best
#   trade-off of that sweep.
# * `FewShotConfig(preserve_weight=..., preserve_neighbours=...)` adds an optional term (not in the
#   paper) that anchors the text embeddings of neighbouring concepts; notebook 12 measures it.
# * `result.save("erased/sneaker", base_model="builtin")` writes the erased encoder in the usual
#   transformers format; `python -m erasure_lib erase ...` does all of this from the shell.

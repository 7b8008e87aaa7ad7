# %% [markdown]
# # 08 · Can the erased concept be brought back? (the paper's own caveat, measured)
#
# Few-shot unlearning changes only the text encoder: the U-Net still holds the concept. Two
# attacks that leave the erased weights alone:
#
# (a) **other wordings** of the concept in the prompt (plural, a misspelling, an adjective, a
#     paraphrase from `data.PARAPHRASES`, ...);
# (b) **concept inversion** (Pham et al., ICLR 2024): Textual Inversion run against the *erased*
#     model, learning a new token's embedding from a few real images with a fixed step budget;
# (c) **the conditioning attack** (U-Net side), the one the paper's limit section implies: the
#     U-Net is untouched by few-shot unlearning, so learn the U-Net's conditioning itself (the text
#     encoder's output, starting from the target's own encoding of "a photo of a <class>") by
#     descending the denoising loss on a few real images, around the erased text encoder.
#
# Both learning attacks use real images the erasure never saw (`attack_images: other`; on the
# built-in model Fashion-MNIST test renders, the erasures draw from the training split).
#
# For each class: the share of images the classifier assigns to the class, on the base model, after
# erasure, and under each attack, for few-shot unlearning and for the U-Net methods ESD-u and UCE
# (the same erasures as notebook 13, seed by seed: each is read back from `erasure_cache/seed-N` when
# 13 saved it with the same images and settings, and trained and saved there otherwise; ESD at the
# setting its own sweep chose, notebook 17). The inversion is also run against the base model (what
# the attack reaches when nothing was erased). Every erasure seed is an evaluation seed, never one
# the settings were calibrated on; means come with 95% bootstrap intervals over classes x seeds.

# %%
import dataclasses
import time

import pandas as pd

from erasure_lib import attacks, calibration, data, experiment, results

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
esd_calibration: str = "results/esd_calibration_summary.csv"  # notebook 17's sweep: ESD's lr and iterations (as 13); empty: the two below
esd_iterations: int = 1000  # ESD iterations without a calibration (published default 1000)
esd_lr: float = 1e-5  # ESD learning rate without a calibration (published default 1e-5)
seeds: list = [3, 4, 5]  # erasure seeds (the first three of notebook 13's; about 37 min each on two cores, kept in rows_cache): each picks the images and seeds erasure and attack
n_images: int = 4  # real training images per erasure
attack_images: str = "other"  # what the attacks learn from: 'other' (images the erasure never saw) or 'erasure' (its own)
n_attack_images: int = 8  # real images the attacks learn from ('other')
n_eval: int = 16  # generated images per prompt set
inversion_steps: int = 200  # the attack's step budget
inversion_lr: float = 5e-3  # the attack's learning rate
conditioning_steps: int = 100  # the conditioning attack's step budget
conditioning_lr: float = 1e-3  # the conditioning attack's learning rate (Adam)
conditioning_batch: int = 8  # images per step of the conditioning attack
num_inference_steps: int = 50  # sampling steps (as notebook 13)
sampler: str = "model"  # 'model' (the model's own: PNDM) or a faster one notebook 18 vindicates ('dpm-solver++', 'ddim')
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
work_dir: str = "build/robustness"  # where the few-shot image sets are written
erasure_cache: str = "build/erasures"  # saved erasures shared with notebook 13 (one folder per seed)
rows_cache: str = "results/robustness_rows"  # each class and seed's attack rows with the key of what they depend on, committed so that seeds accumulate across checkouts; "" recomputes all

# %% [markdown]
# ## Set-up: the model, the judge, one configuration per method attacked, and the attack's settings

# %%
t_start = time.perf_counter()
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads, sampler)
esd = calibration.chosen_setting(esd_calibration) if esd_calibration else {"iterations": esd_iterations, "lr": esd_lr}
seeds = experiment.evaluation_seeds(seeds, fewshot_settings, also_calibrated_on=[esd.get("seed")])
configs = lambda seed: experiment.method_configs(fewshot_settings, seed, esd_train_method, esd["iterations"], esd["lr"], only=methods)  # noqa: E731
inversion = attacks.InversionConfig(steps=inversion_steps, lr=inversion_lr, seed=seeds[0])
conditioning = attacks.ConditioningAttackConfig(steps=conditioning_steps, lr=conditioning_lr, batch_size=conditioning_batch, seed=seeds[0])
print(*configs(seeds[0]).values(), inversion, conditioning, f"seeds {seeds}", setup, sep="\n")

# %% [markdown]
# ## Erase each class with each method, then attack the base model and every erasure
#
# Per seed and class: the erasures (read back from `erasure_cache/seed-N` when notebook 13 saved them
# with the same images and settings), then every wording of `attacks.prompt_variants`, one concept
# inversion and one conditioning attack per target (each seeded by the erasure seed; the seeds
# printed above are the first seed's), each judged on `n_eval` images. One row per seed, class,
# attack and target.

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
attacked = lambda seed: attacks.robustness(  # noqa: E731
    setup.pipeline, setup.judge, setup.classes, images, seed, configs(seed), f"{erasure_cache}/seed-{seed}", model,
    dataclasses.replace(inversion, seed=seed), setup.generation, n_eval, setup.universe,
    attack_images=experiment.attack_image_source(images_dir, n_attack_images, seed, attack_images),
    conditioning=dataclasses.replace(conditioning, seed=seed), rows_cache=rows_cache or None,
).assign(seed=seed)  # fmt: skip
table = pd.concat([attacked(seed) for seed in seeds], ignore_index=True)
results.write_csv(table, results_prefix + "robustness.csv", sort_by=["seed", "erased_class", "attack", "target"])

# %% [markdown]
# ## Mean over classes and seeds: the share of images still judged to show the erased class

# %%
summary = attacks.attack_summary(table, [attacks.BASE, *methods])
results.write_csv(summary, results_prefix + "robustness_summary.csv", sort_by=["attack"])
summary.round(3)

# %% [markdown]
# ## The same means with their 95% intervals over the runs, and the share of runs that draw the class
#
# `drawn_share`: the share of runs (class x seed) whose images show the erased class in at least half
# of the images: an attack that brings the concept back in some runs and not in others shows here.

# %%
intervals = attacks.attack_intervals(table, [attacks.BASE, *methods])
results.write_csv(intervals, results_prefix + "robustness_intervals.csv", sort_by=["attack", "target"])
intervals.round(3)

# %% [markdown]
# **What this shows.** Rows are attacks, columns the targets: `base` is the unerased model, the
# others one erasure each. `wording: as erased` is the erasure itself (the prompts it was trained
# against); every other row is an attack, which succeeds where its share rises above that row's.
# In the committed run (2026-12-08: built-in model, 10 classes, erasure seeds 3, 4 and 5, few-shot
# unlearning at the defaults, lr 3e-4 for 8 epochs; ESD-u at notebook 17's setting; 50 PNDM steps,
# 16 images per attack and target, attacks learning from 8 test renders the erasures never saw; 30
# runs) the erasures leave 0.53 [0.37, 0.69] (few-shot), 0.51 [0.41, 0.61] (ESD-u) and 0.09 [0.06,
# 0.13] (UCE) of the erased class's images, against 0.95 on the base model. The seeds differ as
# notebook 03 found: on seed 3 few-shot erased only sandal in part (0.50; mean 0.92), on seed 4 seven
# classes (ankle boot, coat, pullover, sandal, shirt, sneaker, trouser at 0.06 or less; bag 0.38;
# mean 0.24), on seed 5 six (coat 0.25, pullover 0.12, shirt, sneaker, t-shirt and trouser at 0.06 or
# less; mean 0.43). Seeds 3 and 4 were computed again in this run (their rows were not in this
# checkout) and equal the 2026-12-07 run's to the digit. Concept inversion reaches 0.82 on the base
# model, so it works where the concept is intact, and 0.05 [0.01, 0.11] against few-shot (at most
# 0.12 on any seed's mean), far below the erasure's own share: the token learned through the erased
# encoder draws almost nothing of the class, even where the class's own name still draws it in every
# image; against ESD-u it reaches 0.43 and against UCE 0.12. The conditioning attack, which bypasses
# the text encoder and meets the U-Net few-shot unlearning left untouched, gives 0.62 [0.46, 0.77]
# against few-shot (0.96 on seed 3, where there was little to bring back; 0.36 on seed 4 and 0.55 on
# seed 5, against 0.24 and 0.43 as erased), 0.48 against ESD-u and 0.11 against UCE; on the base
# model, started from its own encoding of the class, 0.85. No other wording beats `as erased` on
# average for any erasure; the base model itself draws the class for only some wordings (plural
# 0.31, paraphrase 0.20, misspelling 0.46), which limits what those rows can show on the built-in
# model.
#
# **Against the paper.** The paper warns that few-shot unlearning leaves the U-Net untouched, so
# the concept may come back; Pham et al. bring erased concepts back by concept inversion on Stable
# Diffusion. The claims table reads the runs few-shot erased (the class drawn in under half its
# images: 14 of the 30, 8 on seed 4 and 6 on seed 5) and counts those an attack draws again (in half
# or more): the conditioning attack brings back 3 of the 14 (bag on seed 4, 0.38 -> 1.00; coat, 0.25
# -> 0.62, and t-shirt, 0.06 -> 0.56, on seed 5; sandal on seed 4 comes back in part, 0.00 -> 0.44),
# concept inversion none, so the verdict is "confirmed in part". That the U-Net still holds every
# class is certain by construction (the base model's own encoding draws each at 0.95 through the
# same U-Net); what the attacks measure is how much of it a fixed budget finds from the erased
# encoder's starting point (100 conditioning steps at lr 1e-3 from the erased encoding; 200 inversion
# steps), and at these budgets, fixed before any run, it finds some of it. Concept inversion failing
# even on classes the erasure did not remove (seed 3) says the attack, as run here, is broken by the
# erasure itself rather than stopped by it: the erasure raises the denoising loss of every prompt,
# the empty one (classifier-free guidance's unconditional branch) included, and the inversion learns
# a token that undoes that shift instead of finding the class (a lead from a first check on two
# classes, not yet measured here). These are the built-in model's numbers; the sd14 profile runs the
# same cells on Stable Diffusion v1.4.

# %% [markdown]
# ## Per class: the erasure itself and concept inversion

# %%
shown = table[table.attack.isin(["wording: as erased", attacks.INVERSION, attacks.CONDITIONING])]
shown.pivot_table(index=["attack", "target"], columns="erased_class", values="share").round(2)

# %% [markdown]
# **What this shows.** The spread behind the means, per class, averaged over the three seeds.
# Few-shot's own prompts draw dress at 0.96, bag at 0.79 (1.00 on seeds 3 and 5, 0.38 on seed 4),
# ankle boot and t-shirt at 0.67 and 0.65, the others at 0.33-0.50 (each erased on one or two seeds
# and drawn on the rest). The conditioning attack against few-shot draws bag and dress at 1.00 on
# every seed, t-shirt at 0.83 and sandal at 0.77, the other classes at 0.33-0.67, about their erased
# shares: on the seeds that erased them it leaves ankle boot, pullover, shirt, sneaker and trouser at
# 0.00-0.31. Concept inversion against few-shot stays at 0.00-0.23 per class (t-shirt highest, 0.62
# on seed 4). Against ESD-u, which edits the U-Net, concept inversion draws some classes more than
# the erasure's own prompts do (t-shirt 0.85 against 0.54, bag 0.81 against 0.54) and others less
# (dress 0.23 against 0.65); the conditioning attack stays near the erased shares. Against UCE both
# attacks stay at or below 0.17 per class except sandal (inversion 0.42, conditioning 0.48, against
# 0.12 as erased) and coat's inversion (0.40, against 0.00).

# %%
notebook = "notebooks/paper/08-robustness.ipynb"
results.record_run(
    notebook,
    experiment.notebook_parameters(notebook, globals()),
    [results_prefix + f for f in ("robustness.csv", "robustness_summary.csv", "robustness_intervals.csv")],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

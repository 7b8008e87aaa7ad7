# %% [markdown]
# # 12 · Keep the neighbours: the plain method against a preservation term
#
# The paper's loss protects nothing: it pushes the text encoder away from the concept until the
# epochs run out, and in a small world related concepts share text features, so erasing "sneaker"
# may take "sandal" and "ankle boot" along. `FewShotConfig(preserve_weight=w, preserve_neighbours=k,
# preserve_vocabulary=...)` adds an anchor on the text embeddings of the k concepts nearest the
# erased one in the *original* encoder's space (no U-Net call, no classifier); k = all anchors the
# whole vocabulary (the built-in classes and styles). For every class, the plain method and each
# anchored variant over learning rates and epochs (checkpoints): erased share, accuracy on the
# related classes (the grouping of notebook 06) and on the unrelated ones, on the paper's templates
# and on wordings the erasure never saw; UCE, which has a preservation term of its own, on the same
# figure; where the erased prompt goes (transition matrices); the cost as a time ratio; and whether
# the anchor changes how easily the concept comes back under the attacks of notebook 08.
#
# On Stable Diffusion (the sd14 parameters: `relatedness: wordnet`) the related classes of an
# Imagenette class are its `n_related` nearest ImageNet classes in WordNet (tench: goldfish, eel,
# coho; English springer: three other spaniels), which the ImageNet judge then evaluates beside the
# ten, and the anchors' vocabulary is all of those classes.

# %%
import time
from dataclasses import replace
from functools import partial

import pandas as pd

from erasure_lib import attacks, data, evaluation, experiment, plots, results
from erasure_lib.methods import fewshot

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
n_images: int = 4  # real images per erasure
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs); learning_rates and epochs below replace them
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
relatedness: str = "garment groups"  # 'garment groups' (data.CLASS_GROUPS, the built-in model) or 'wordnet' (ImageNet neighbours, sd14)
n_related: int = 3  # with 'wordnet': the nearest ImageNet classes judged as each erased class's related ones
max_distance: int = 7  # with 'wordnet': related classes lie within this many WordNet links (hierarchy.DEFAULT_MAX_DISTANCE)
classes: list = list(data.CLASSES)  # classes erased, one at a time
learning_rates: list = []  # learning rates of every variant (empty: the fewshot_settings' lr, on the built-in model notebook 02's choice)
epochs: int = 32  # epochs per run (every checkpoint in eval_epochs is judged)
eval_epochs: list = [4, 8, 16, 32]  # checkpoints judged
anchors: list = [{"neighbours": 3, "weight": 1.0}, {"neighbours": "all", "weight": 1.0}]  # preserved variants
default_lr: float = 0.0  # the setting whose transitions and attacks are reported (0: the fewshot_settings' lr); one of learning_rates
default_epochs: int = 0  # ditto (0: the fewshot_settings' epochs); one of eval_epochs
inversion_classes: list = ["shirt", "sneaker", "bag"]  # classes attacked by concept inversion (plain vs the last anchor)
attack_images: str = "other"  # what concept inversion learns from: 'other' (real images the erasure never saw, as notebook 08) or 'erasure' (its own)
n_attack_images: int = 8  # real images concept inversion learns from ('other', as notebook 08)
inversion_steps: int = 200  # the attack's step budget (as notebook 08)
inversion_lr: float = 5e-3  # the attack's learning rate (as notebook 08)
wordings: list = ["paper", "held-out"]  # prompt wordings judged (names of data.WORDINGS; 'held-out': templates the erasure and the model's training never used)
seeds: list = [3, 4, 5, 6, 7]  # erasure seeds (evaluation seeds: never notebook 02's calibration seed); each picks the images and seeds the erasure
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 4  # generated images of every other class per evaluation
n_eval: int = 16  # generated images per attack prompt set
num_inference_steps: int = 25  # sampling steps
sampler: str = "ddim"  # 'model' (the model's own: PNDM) or one notebook 18 vindicates ('ddim' at 25 steps: the labels of PNDM at 50 on 99% of images)
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/keep-the-neighbours"  # where the few-shot image sets and each run's verdicts per wording (the sweeps' caches: re-runs resume) are written

# %% [markdown]
# ## Set-up: the model, the judge, and one configuration per (variant, learning rate)
#
# The anchors' vocabulary is every concept the judge evaluates (on the built-in model its garment
# classes, and its styles); the related groups are those of notebook 06 (`data.CLASS_GROUPS`) or,
# with `relatedness: wordnet`, each class's nearest ImageNet classes, printed below.

# %%
chosen = experiment.fewshot_config(fewshot_settings)  # the default setting: notebook 02's on the built-in model, the paper's on SD
learning_rates = learning_rates or [chosen.lr]
default_lr = default_lr or chosen.lr
default_epochs = default_epochs or chosen.epochs
if default_lr not in learning_rates:
    raise ValueError(f"default_lr={default_lr} must be one of learning_rates={learning_rates}")
if default_epochs not in eval_epochs:
    raise ValueError(f"default_epochs={default_epochs} must be one of eval_epochs={eval_epochs}")
t_start = time.perf_counter()
seeds = experiment.evaluation_seeds(seeds, fewshot_settings)  # refuses a calibration seed
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads, sampler)
setup, groups = experiment.related_groups(setup, relatedness, n_related, max_distance)
inversion = attacks.InversionConfig(steps=inversion_steps, lr=inversion_lr, seed=seeds[0])
vocabulary = (*setup.universe, *(data.STYLES[1:] if experiment.has_styles(setup.judge) else ()))
variants = {"plain (paper)": {}}
for anchor in anchors:
    k = len(vocabulary) - 1 if anchor["neighbours"] == "all" else int(anchor["neighbours"])
    name = f"anchor {'all' if k == len(vocabulary) - 1 else k} of {len(vocabulary) - 1}, w={anchor['weight']:g}"
    variants[name] = {"preserve_weight": float(anchor["weight"]), "preserve_neighbours": k, "preserve_vocabulary": vocabulary}
configs = {(name, lr): experiment.fewshot_config(fewshot_settings, lr=lr, epochs=epochs, **options) for name, options in variants.items() for lr in learning_rates}
strongest = list(variants)[-1]
print(*variants, setup, inversion, *(f"related to {c}: {related_to}" for c, related_to in groups.items()), sep="\n")

# %% [markdown]
# ## Every class: the plain method and each anchor, over learning rates and checkpoints
#
# Judged on the erased class, its related classes and the unrelated ones, in every wording: the
# paper's templates (the erasure's own prompts and the model's training captions) and wordings the
# erasure never saw. One sweep per wording, each with its own cache (the seeded erasure is re-done in
# seconds; the judging is the cost), stacked into one table. UCE with its own preservation term on the
# 3 nearest concepts beside them.

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
related = partial(evaluation.summarize_related, groups=groups)
templates = {w: data.WORDINGS[w] for w in wordings}
per_wording = {w: None if w == "paper" else {w: templates[w]} for w in wordings}  # None: the paper's templates, as notebooks 02-05 judge
sweep = evaluation.stack_wordings({
    w: evaluation.sweep(setup.pipeline, setup.judge, setup.classes, configs, seeds, images, setup.generation, n_erased, n_others,
                        setup.universe, epochs=eval_epochs, variant="setting", measures=related, wordings=per_wording[w], cache=f"{work_dir}/runs/{w}")
    for w in wordings})  # fmt: skip
uce_rows = evaluation.uce_preserving_nearest(setup.pipeline, setup.judge, setup.classes, vocabulary, 3, setup.generation,
                                             n_erased, n_others, related, setup.universe, wordings=templates)  # fmt: skip

# %%
rows = sweep.rows.merge(sweep.runs, on=["erased_class", "setting", "seed"], suffixes=("", "_run"))
rows = rows.merge(sweep.probes, on=["erased_class", "setting", "seed", "epochs"], how="left")
rows["method"], rows["lr"] = rows.setting.str[0], rows.setting.str[1]
base = rows[rows.epochs == 0].drop_duplicates(["erased_class", "wording"]).assign(method="base model", lr=0.0, seed=-1, retained="", probe_ratio=1.0)
uce_rows = uce_rows.assign(method="UCE (preserving the 3 nearest)", lr=0.0, seed=-1, epochs=-1, probe_ratio=float("nan"))
columns = ["erased_class", "method", "lr", "seed", "epochs", "wording", "retained", "probe_ratio", "erased_share", "related_accuracy", "unrelated_accuracy", "others_accuracy"]
table = pd.concat([base, rows[rows.epochs > 0], uce_rows])[columns]

# %% [markdown]
# At the default setting (`default_lr`, `default_epochs`) each variant's erased model of the first
# seed is erased again (the same seeded run, under a second) for the attacks of notebook 08;
# concept inversion learns from real images the erasure never saw (`attack_images`).

# %%
seed = seeds[0]
shots = experiment.attack_image_source(images_dir, n_attack_images, seed, attack_images)
learn_from = lambda c: images(c, seed) if shots is None else shots(c, images(c, seed))  # noqa: E731
at_default = {name: replace(configs[name, default_lr], seed=seed, keep_checkpoints=True) for name in variants}
targets = {c: {"base model": setup.pipeline} | {name: fewshot.erase(setup.pipeline, c, images(c, seed), config, progress_bar=False)
                                                .apply(setup.pipeline, epoch=default_epochs) for name, config in at_default.items()}
           for c in setup.classes}  # fmt: skip
reworded = [attacks.wording_attacks(targets[c], c, setup.judge, setup.generation, n_eval, setup.universe, data.PARAPHRASES.get(c)) for c in setup.classes]
inverted = [attacks.inversion_attacks({name: targets[c][name] for name in ("base model", "plain (paper)", strongest)}, c, learn_from(c),
                                      inversion, setup.judge, setup.generation, n_eval, setup.universe)
            for c in setup.classes if c in inversion_classes]  # fmt: skip
attack_table = pd.concat(reworded + inverted, ignore_index=True)

# %% [markdown]
# ## The front: mean over classes at every setting, and the aim
#
# The aim of the issue: erased share <= 0.10 with the related classes within 0.10 of the base model
# on average, at one setting for all classes (no per-class choice by a classifier).

# %%
results.write_csv(table, results_prefix + "keep_the_neighbours.csv", sort_by=["erased_class", "method", "lr", "seed", "epochs", "wording"])
summary = evaluation.neighbour_summary(table, max_erased=0.10, max_related_drop=0.10)
results.write_csv(summary, results_prefix + "keep_the_neighbours_summary.csv", sort_by=["method", "lr", "epochs", "wording"])
summary

# %%
fig = plots.neighbour_front(pd.read_csv(results.resolve(results_prefix + "keep_the_neighbours.csv")))
results.save_figure(fig, figures_prefix + "keep_the_neighbours.png")

# %% [markdown]
# **What this shows.** In the committed run (10 classes x erasure seeds 3-7, 50 runs per setting, lr
# 3e-4 as notebook 02 chose, checkpoints at 4, 8, 16 and 32 epochs, DDIM 25 steps, 16 images of the
# erased class and 4 of each other per judged model and wording; base model on the paper's templates:
# erased share 0.956, related classes 0.964, unrelated 0.981; on the held-out wordings 0.950, 0.929,
# 0.962) no setting meets the aim in either wording. The numbers below are the paper wording's; the
# held-out wordings give the same picture within 0.03 at every setting (the plain method at the
# default 0.59 [0.47, 0.70] in both, related down 0.11 against 0.13; the anchor on all at 16 epochs
# 0.50 [0.37, 0.62] against 0.51, related +0.05 against +0.01; UCE 0.13 against 0.11, related down
# 0.22 against 0.23; per seed at the default 0.91, 0.22, 0.41, 0.63, 0.76): the erasure and the
# anchor act on the concept, not on the prompts the erasure saw. The plain method erases only by taking the related
# classes along: at the default (8 epochs) the erased share is 0.59 [0.47, 0.71] (95% interval over
# the 50 runs) with the related accuracy down 0.13; at 16 epochs 0.26 [0.17, 0.36], related down
# 0.35; at 32 epochs 0.010, related down 0.72 and unrelated 0.27. The seed decides much of it: at the
# default the plain method leaves 0.93, 0.23, 0.42, 0.62 and 0.72 on seeds 3 to 7 (means over the
# classes). The anchors move the front: anchoring all 11 concepts keeps the related classes whole up
# to 16 epochs (erased 0.51 [0.38, 0.64], related +0.01, unrelated down 0.04, where the plain method at
# 0.59 has lost 0.13 of them already) and at 32 epochs erases everything (0.001 [0.000, 0.004]) for a
# related drop of 0.19 and an unrelated one of 0.16; anchoring the 3 nearest follows it to 16 epochs
# (0.52, related down 0.03) and then costs more (at 32: related down 0.41). UCE with its own
# preservation term erases to 0.11 [0.04, 0.18] but costs the related classes 0.23 (one deterministic
# edit per class: 10 runs). The aim lies between the anchor's 16 and 32 epochs, which this run did not
# judge: no checkpoint of any variant meets it. Seeds 6 and 7 added to seeds 3-5 (whose rows are the
# earlier run's to the digit) move no conclusion: the plain method at the default 0.53 -> 0.59, the
# anchor on all at 16 epochs 0.45 -> 0.51. At the former defaults (lr 1e-3, checkpoints 1-8 epochs,
# seeds 3-5) the picture was the same: anchor on all 0.13 [0.04, 0.23] at 8 epochs with related down
# 0.04, plain 0.06 with related down 0.69.
#
# **Against the paper.** The paper's loss has no preservation term and claims the other concepts are
# kept; here the neighbours are exactly what the plain method damages, and an anchor on the text
# embeddings moves the front towards the aim (the related classes kept at every erased share the
# plain method reaches) without meeting it at a judged checkpoint, at twice the plain method's
# default epochs or more.

# %% [markdown]
# ## Where the erased prompt goes, with and without the anchor (lr and epochs at the default)
#
# The file keeps every wording; the figure shows the first (`wordings[0]`).

# %%
where = sweep.destinations
before = where[where.when == "before"].assign(when="base model")
after = where[(where.when == "after") & (where.epochs == default_epochs) & (where.setting.str[1] == default_lr)]
transitions = pd.concat([before, after.assign(when=after.setting.str[0])])[["erased_class", "when", "wording", "seed", "predicted_class", "share"]]
results.write_csv(transitions, results_prefix + "keep_the_neighbours_transitions.csv", sort_by=["when", "erased_class", "wording", "predicted_class"])
fig = plots.transition_heatmaps(transitions[transitions.wording == wordings[0]], list(setup.universe), panels=["base model", *variants])
results.save_figure(fig, figures_prefix + "keep_the_neighbours_transitions.png")

# %% [markdown]
# **What this shows.** At the default setting (8 epochs at lr 3e-4; shares averaged over seeds 3-7)
# the plain method sends the erased prompts that move to a neighbour and elsewhere alike: coat to
# dress and pullover (0.35, 0.19), shirt to t-shirt and pullover (0.39, 0.21), trouser to pullover and
# dress (0.26, 0.24), pullover to dress and t-shirt (0.19, 0.16), t-shirt to sneaker and bag (0.20,
# 0.19). With the anchor on all concepts fewer prompts move (own share 0.82 against 0.59), and those
# that do go much where the plain method's went (shirt to t-shirt 0.30, the base model's own confusion
# 0.25; trouser to dress 0.17): the anchor keeps the neighbours' own prompts, not the erased prompt
# from landing on them. The footwear's moves (sneaker to ankle boot, sandal and ankle boot to bag,
# 0.20 each in every variant) are one seed's: on seed 4 all of the class's images move, plain or
# anchored, and on seeds 3, 5, 6 and 7 none do. On the held-out wordings (in the file, not drawn) the
# same moves come out within 0.04 (plain: shirt to t-shirt 0.41, coat to dress 0.35, trouser to dress
# 0.25 and pullover 0.21; anchor on all: shirt to t-shirt 0.34, trouser to dress 0.20), with the same
# own shares (0.59 plain, 0.82 anchored).

# %% [markdown]
# ## Does the anchor change how easily the concept comes back? Cost of the anchor.

# %%
results.write_csv(attack_table, results_prefix + "keep_the_neighbours_attacks.csv", sort_by=["erased_class", "attack", "target"])
cost = sweep.runs.groupby(sweep.runs.setting.str[0], sort=False).optimization_seconds.median().to_dict()
results.write_json({"median_optimization_seconds": cost, "epochs": epochs,
                    "time_ratio_to_plain": {name: c / cost["plain (paper)"] for name, c in cost.items()}},
                   results_prefix + "keep_the_neighbours_cost.json")
display(attack_table.pivot_table(index="attack", columns="target", values="share", aggfunc="mean").round(3))  # noqa: F821
pd.Series(cost).round(3)

# %% [markdown]
# **What this shows.** The attacks of notebook 08 at the default setting on the first seed (3),
# mean share of images still showing the erased class: as erased, 0.96 on the base model, 0.93 after
# the plain method, 0.96 after both anchored ones (seed 3 is one on which the default erases
# little; the sweep above gives all five seeds). The wordings recover no more than the base model
# itself draws from them (misspelling 0.44-0.48, plural 0.29-0.31; with an adjective 0.75 plain,
# 0.86 anchored, 0.96 base). Concept inversion, learning from 8 test renders the erasure never saw,
# reaches 0.77 on the base model but 0.00 against the plain method and 0.02 against the strongest
# anchor (shirt, sneaker, bag: 0.00 each, and 0.06, 0.00, 0.00), although the plain prompt still
# draws the class on these encoders: a token learned through the changed encoder fails where the
# unchanged word works (at the former defaults it reached 0.29 and 0.35). The anchors cost 17% (3
# nearest) and 28% (all) more optimization time than the plain method (one extra text-encoder pass
# per step; median 5.2 s for the plain method's 32 epochs, over the 50 runs of seeds 3-7).

# %%
notebook = "notebooks/paper/12-keep-the-neighbours.ipynb"
results.record_run(
    notebook, experiment.notebook_parameters(notebook, globals()),
    [results_prefix + f for f in ("keep_the_neighbours.csv", "keep_the_neighbours_summary.csv", "keep_the_neighbours_transitions.csv",
                                  "keep_the_neighbours_attacks.csv", "keep_the_neighbours_cost.json")]
    + [figures_prefix + "keep_the_neighbours.png", figures_prefix + "keep_the_neighbours_transitions.png"],
    time.perf_counter() - t_start, manifest=results_prefix + "manifest.json",
)

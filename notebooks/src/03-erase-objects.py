# %% [markdown]
# # 03 · Erasing each object class with few-shot unlearning (paper, Sec. 4.1)
#
# For each of the 10 classes, in turn: pick 4 real training images of it, erase it from the
# built-in model with `FewShotConfig.builtin()` (the paper's method, calibrated learning rate and
# epochs from notebook 02), and measure, with the same prompts and seeds before and after:
# the share of the erased class's images that the classifier still assigns to it, and the accuracy
# on the other nine classes. Five erasure seeds (different images, different draws) per class, none
# of them the seed notebook 02 calibrated the defaults on.
#
# The measures carry UnlearnCanvas's names beside ours: **UA** (unlearning accuracy) = 1 - erased
# share, the share of the erased class's images *not* judged as it (higher = more erased); **IRA**
# (in-domain retain accuracy) = the other classes' accuracy after erasure (higher = better kept).
# Erasure is all-or-nothing per run on this model, so the summary also gives the share of runs that
# succeed (UA >= `min_ua`), and every mean comes with a 95% bootstrap interval over the runs.
#
# Two trainable-parameter options: `mlp-final-attn`, as the paper describes its method, and `all`,
# what the official code actually trained until 2026 (a `require_grad` typo left every text-encoder
# weight trainable, so the paper's numbers come from it), both at the same learning rate and epochs.
# Two wordings: the paper's templates (also the erasure's own prompts and the built-in model's
# training captions) and held-out wordings the erasure never saw (`data.HELDOUT_OBJECT_TEMPLATES`).
#
# With the sd14 parameters (`notebooks/params/sd14/`) the same cells run the paper's setting:
# Stable Diffusion v1.4, 4 Imagenette images per class from `images_dir`, the paper's lr and epochs
# (`fewshot_settings: paper`) and EVA02's ImageNet top-1 as the judge (`evaluator: eva02`).

# %%
import time
from dataclasses import replace

from erasure_lib import benchmark, calibration, data, evaluation, experiment, plots, results
from erasure_lib.methods import fewshot

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
classes: list = list(data.CLASSES)  # classes erased, one at a time
seeds: list = [3, 4, 5, 6, 7]  # erasure seeds: each picks its own images and random draws (never a calibration seed)
trainable_options: list = ["mlp-final-attn", "all"]  # parameter options compared; the first is the method's (figures, notebook 06)
wordings: list = ["paper", "held-out"]  # evaluation wordings, names in data.WORDINGS
min_ua: float = 0.9  # a run succeeds when its UA (1 - erased share) reaches this
n_images: int = 4  # real training images per erasure (the paper's 4)
n_erased: int = 12  # generated images of the erased class per evaluation and wording
n_others: int = 4  # generated images of every other class per evaluation and wording
cra_styles: list = ["sketch", "sepia"]  # styles the other classes are also drawn in, for CRA (empty: none; the built-in judge only)
n_styled: int = 1  # images of every other class per style and judged model (CRA)
random_control: bool = True  # also judge each erasure's update redrawn at random, same size (notebook 06's baseline)
num_inference_steps: int = 50  # sampling steps (notebook 15: shares stop moving between 50 and 100)
guidance_scale: float = 7.5  # classifier-free guidance
grid_classes: list = ["sneaker", "trouser", "bag"]  # classes shown before/after in the figure
throughput_images: int = 64  # images generated (at 20 and at 25 steps) to measure the generation throughput
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/object-erasure"  # where the few-shot image sets are written

# %% [markdown]
# The built-in defaults come from notebook 02's calibration: the setting with the smallest
# `erased_share + max(0, others_drop - 0.10)` among those of at least `min_epochs` epochs (the rule
# and the `min_epochs` notebook 02's run recorded). Re-derived here from the committed CSV, and
# checked against `FewShotConfig.builtin()` (the paper's settings need no check). The seed notebook
# 02 calibrated on is read from the manifest and kept out of the evaluation seeds.

# %%
calibration_seeds = []
if fewshot_settings == "builtin":
    choice = calibration.chosen_fewshot_setting("results/fewshot_calibration_summary.csv")
    print(choice)
    assert (choice["lr"], choice["epochs"]) == (fewshot.FewShotConfig.builtin().lr, fewshot.FewShotConfig.builtin().epochs), "defaults differ from the calibration"
    calibration_seeds = [choice["seed"]]
seeds = experiment.evaluation_seeds(seeds, fewshot_settings)  # refuses a calibration seed

# %%
t_start = time.perf_counter()
config = experiment.fewshot_config(fewshot_settings)
setup = experiment.setup(model, evaluator, device, dtype, classes, num_inference_steps, guidance_scale, threads)
print(config, setup, sep="\n")

# %% [markdown]
# ## Erase each class with each seed; judge before and after on the same prompts and seeds

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
variants = {option: replace(config, trainable=option) for option in trainable_options}
sweep = evaluation.sweep(setup.pipeline, setup.judge, setup.classes, variants, seeds, images, setup.generation, n_erased, n_others,
                         setup.universe, variant="trainable", keep_models=True, wordings={w: data.WORDINGS[w] for w in wordings},
                         styles=cra_styles, n_styled=n_styled, random_control=random_control)  # fmt: skip
table = evaluation.before_after(sweep.rows).drop(columns=["epochs"])
results.write_csv(table, results_prefix + "fewshot_object_erasure.csv", sort_by=["erased_class", "trainable", "wording", "seed"])
transitions = sweep.destinations.drop(columns="epochs")
results.write_csv(transitions, results_prefix + "fewshot_object_transitions.csv", sort_by=["erased_class", "trainable", "wording", "when", "seed", "predicted_class"])
landed = sweep.imagenet_destinations.drop(columns="epochs")  # an ImageNet judge (sd14): where they land among all 1000 classes
if len(landed):
    results.write_csv(landed, results_prefix + "fewshot_object_imagenet_destinations.csv", sort_by=["erased_class", "trainable", "wording", "when", "seed", "imagenet_index"])

# %% [markdown]
# ## UA, IRA, CRA and the share of runs that succeed, per option and wording (95% bootstrap intervals over runs)
#
# **CRA** (cross-domain retain accuracy) for an object erasure: the other kind of concept kept, here
# the share of the other classes' images prompted in a style (`cra_styles`, `n_styled` per class and
# style, "a photo of a shirt in the style of sketch") that the judge sees in that style (higher =
# better kept). One style set per judged model, so both wordings' rows carry the same CRA.

# %%
stated = {"sampling_steps": num_inference_steps, "erased_images_per_run": n_erased, "other_images_per_class": n_others, "few_shot_images": n_images,
          "styled_images_per_class_and_style": n_styled if cra_styles else 0}  # fmt: skip
by_option = evaluation.unlearning_summary(table, by=["trainable", "wording"], min_ua=min_ua).assign(**stated)
results.write_csv(by_option, results_prefix + "fewshot_object_erasure_by_option.csv")
main = table[table.trainable == trainable_options[0]]  # the method as the paper describes it
summary = evaluation.before_after_summary(main, max_erased_share=1 - min_ua, max_others_drop=0.10) | stated | {
    "trainable": trainable_options[0], "seeds": seeds, "calibration_seeds": calibration_seeds, "config": config}
results.write_json(summary, results_prefix + "fewshot_object_erasure_summary.json")
by_option.drop(columns=list(stated)).round(3).T

# %% [markdown]
# **What this shows.** The committed run (10 classes x seeds 3-7, 50 sampling steps, 12 images of
# the erased class per run and wording, 4 of each other class; the defaults of notebook 02, lr 3e-4
# after 8 epochs): the method as described (`mlp-final-attn`, 0.59M weights) raises UA from 0.05 to
# **0.42 [0.29, 0.54]** and succeeds (UA >= 0.9) in **0.36 [0.22, 0.50]** of the 50 runs, while IRA
# falls from 0.975 to 0.939 (drop 0.036 [0.019, 0.057]); a run that both succeeds and keeps the
# others within 0.10 is rarer (0.26 [0.14, 0.38]), and no class is erased on the mean of its five
# seeds (shirt comes closest, 0.78). The whole encoder (`all`, 7.1M weights, what the official code
# trained) erases more (UA 0.70 [0.58, 0.80], succeeds in 0.58 of runs, 3 classes erased on their
# seed mean) and costs the other classes seven times as much (IRA drop 0.25 [0.20, 0.30]), so it is
# clean in only 0.04 of runs. Held-out wordings give the same UA (0.42 and 0.69) and a similar IRA
# drop (0.048, 0.24): the erasure is not tied to the words it was trained on. CRA (the other
# garments drawn in sketch and sepia, 18 images per judged model) barely moves for `mlp-final-attn`
# (1.00 -> 1.00 [0.99, 1.00]) and falls to 0.93 [0.90, 0.95] for `all`: erasing a garment leaves the
# styles in place. At the former defaults (lr 1e-3 after 2 epochs, same seeds and images) the same
# table read UA 0.43, success 0.30, IRA drop 0.056, clean 0.10 (`mlp-final-attn`) and UA 0.75, IRA
# drop 0.22 (`all`): the new defaults keep `mlp-final-attn`'s erasure and cut its damage by about a
# third (`all` erases a little less and costs a little more).
#
# **Against the paper.** Claim 1 (the concept is erased) is **not reproduced** on the built-in model
# with its calibrated settings: about a third of the erasures succeed, and the seed decides as much
# as the class (seed 3 erases none of the 10 classes; seeds 4 and 5 erase 6 and 5 of them). Claim 4
# (the others kept) holds for `mlp-final-attn` (drop 0.04), not for `all` (0.25).

# %% [markdown]
# ## Benchmark: how long one erasure takes (optimization loop, median over classes, on `device`)
#
# The paper reports 7-10 s on a GPU for SD's 123M-parameter encoder and 512 px images. Printed
# here, not asserted: wall-clock time depends on the machine.

# %%
print(f"median optimization loop: {summary['median_optimization_seconds']:.2f} s "
      f"({len(table.groupby('erased_class'))} classes x {len(seeds)} seeds); set-up (loading, encoding): {summary['median_setup_seconds']:.2f} s")

# %% [markdown]
# Generation throughput of the built-in model in the same process (`throughput_images`, guidance on), for
# scale: one erasure costs about as much as generating this many images.

# %%
throughput = benchmark.generation_throughput(setup.pipeline, n_images=throughput_images, steps=(20, 25), guidance_scale=guidance_scale)
results.write_json(throughput | {"erasure_in_images": summary["median_optimization_seconds"] * throughput["images_per_second"]["25"]},
                   results_prefix + "generation_throughput.json")
throughput

# %% [markdown]
# **What this shows.** The committed run (built-in model, CPU) times the optimization loop at a
# median of 0.79 s per erasure (16 optimizer steps; set-up 0.02 s), about as long as generating 7
# images. The paper's claim 1 (7-10 s per concept on a GPU, with SD's far larger encoder and 512 px
# images) holds in kind: an erasure is cheap. The seconds themselves do not compare; notebook 14
# compares the methods on one machine.

# %% [markdown]
# ## Before and after, per class

# %%
per_run = main.groupby(["erased_class", "seed"], as_index=False).mean(numeric_only=True)  # both wordings of a run
fig = plots.before_after_bars(per_run)
results.save_figure(fig, figures_prefix + "fewshot_object_erasure.png")

# %% [markdown]
# **What this shows.** `mlp-final-attn`, each point one seed (both wordings averaged). Over 10
# classes and 5 seeds the erased class's share falls from 0.950 to 0.583, while the other classes'
# accuracy moves from 0.975 to 0.933 (a drop of 0.042). The points show why a mean says little:
# most classes have seeds at both ends. Shirt is erased (UA >= 0.9) in 3 of 5 seeds, coat, trouser
# and sneaker in 2 (seeds 4 and 5 for the last two, untouched by seeds 3, 6 and 7); dress (mean UA
# 0.03) and bag (0.12) in none. The summary's target (erased share at most 0.10, others within
# 0.10) is not met (`target_met: false`). At the former defaults (lr 1e-3 after 2 epochs) the same
# seeds gave 0.950 -> 0.572 and a drop of 0.060; the run before that (seeds 0-2, 25 sampling steps,
# seed 0 the calibration seed) 0.956 -> 0.632 and 0.021.

# %% [markdown]
# ## Where the erased prompt goes: the classifier's verdict on the erased class's prompts
#
# Rows: the erased class (its own prompts); columns: what the classifier says the images show,
# before erasure, after, and (with `random_control`) after the erasure's update is replaced by a
# random direction of the same size per tensor (mean over seeds). The paper's claim 2 is that the
# prompt moves to a related concept; notebook 06 measures it against these baselines.

# %%
panels = ("before", "after", "random direction") if random_control else ("before", "after")
fig = plots.transition_heatmaps(evaluation.one_variant(transitions, trainable_options[0]), list(setup.universe), panels)
results.save_figure(fig, figures_prefix + "fewshot_object_transitions.png")

# %% [markdown]
# **What this shows.** `mlp-final-attn`, mean over seeds and wordings. Before erasure nearly every
# prompt shows its own class (shirt, 0.67, is the exception, mixed with t-shirt; bag 0.83, the rest
# ankle boot). After erasure the images that leave a class land partly on a neighbour of it: shirt
# goes to t-shirt (0.39) and pullover (0.21), sneaker to ankle boot (0.20) and trouser (0.17),
# ankle boot to bag (0.19) and sneaker (0.18), pullover to dress (0.20) and t-shirt (0.16); coat goes
# to dress (0.37) and pullover (0.21), trouser to pullover and dress (0.23 each), t-shirt to sneaker
# and bag (0.20, 0.19), sandal to bag (0.20). Claim 2 (the prompt moves to a related concept) fits
# shirt and part of the footwear and the tops, not t-shirt nor the classes that have no related
# class; notebook 06 measures it. The third panel replaces each erasure's update by a random
# direction of the same size, tensor by tensor: it moves nothing (the erased class keeps 0.95 of its
# images, as in the base model; shirt's mix with t-shirt is the base model's own). What moves the
# prompt is the direction ascent chooses, not the size of the change.

# %%
shown = {c: sweep.models[c] for c in grid_classes if c in sweep.models}
grid, labels = evaluation.before_after_grid(setup.pipeline, shown, "a photo of a {}", [10_000 + k for k in range(6)], setup.generation)
fig = plots.image_grid(grid, labels, None, title="'a photo of a <class>' before and after erasing <class>")
results.save_figure(fig, figures_prefix + "fewshot_object_erasure_samples.png")

# %% [markdown]
# **What this shows.** Samples of the first evaluation seed's erased models (seed 3). That seed
# erased none of these three classes (UA 0.00 for sneaker, trouser and bag), and the figure shows
# it: after erasure the sneaker, the trouser and the bag are drawn as before, in changed shading
# (darker sneakers, greyer bags with handles). The per-seed points above show the seeds that do
# erase them.

# %%
notebook = "notebooks/paper/03-erase-objects.ipynb"
results.record_run(
    notebook, experiment.notebook_parameters(notebook, globals()) | {"config": str(config), "calibration_seeds": calibration_seeds},
    [results_prefix + "fewshot_object_erasure.csv", results_prefix + "fewshot_object_erasure_summary.json", results_prefix + "fewshot_object_erasure_by_option.csv",
     results_prefix + "fewshot_object_transitions.csv", results_prefix + "generation_throughput.json", figures_prefix + "fewshot_object_transitions.png",
     figures_prefix + "fewshot_object_erasure.png", figures_prefix + "fewshot_object_erasure_samples.png"]
    + ([results_prefix + "fewshot_object_imagenet_destinations.csv"] if len(landed) else []),
    time.perf_counter() - t_start, manifest=results_prefix + "manifest.json",
)

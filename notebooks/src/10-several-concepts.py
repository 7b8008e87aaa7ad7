# %% [markdown]
# # 10 · Several concepts at once
#
# The paper erases one concept at a time. Here 2, 3 and 5 classes are erased either **jointly**
# (one run; every image is paired with its own class's prompts, `fewshot.erase_concepts`) or
# **one after another** (each erasure starts from the previous erased model), with the built-in
# defaults and 4 images per class; judged on the erased classes (**UA**, the share of their images
# no longer judged as them: higher = more erased) and on the remaining ones (**IRA**, their
# accuracy: higher = better kept). Each erasure seed draws its own class sets, images and random
# draws; none is the seed notebook 02 calibrated the defaults on. Means come with 95% bootstrap
# intervals over the runs (one run = one set and seed), and, erasure being all-or-nothing per run on
# this model, the share of runs that succeed (UA >= `min_ua`). Every model is judged on two
# wordings: the paper's templates (also the erasure's own prompts and the built-in model's training
# captions) and held-out wordings the erasure never saw (`data.HELDOUT_OBJECT_TEMPLATES`).

# %%
import time

from erasure_lib import data, evaluation, experiment, results

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
images_dir: str = "builtin"  # few-shot images: 'builtin' (Fashion-MNIST renders) or a folder <images_dir>/<class>/
evaluator: str = "builtin"  # judge: 'builtin' (garment classifier), 'eva02', or 'package.module:function'
fewshot_settings: str = "builtin"  # 'builtin' (notebook 02's lr and epochs) or 'paper' (lr 1e-5, 4 epochs)
device: str = "cpu"  # 'cpu' or 'cuda'
dtype: str = "float32"  # the model's floating-point type
set_sizes: list = [2, 3, 5]  # how many classes are erased together
repeats: int = 2  # random class sets per size and seed
seeds: list = [3, 4, 5, 6, 7]  # each picks its class sets, images and erasure draws (never a calibration seed)
min_ua: float = 0.9  # a run succeeds when its UA reaches this
wordings: list = ["paper", "held-out"]  # evaluation wordings, names in data.WORDINGS
n_images: int = 4  # real training images per class
n_erased: int = 12  # generated images per erased class and wording
n_others: int = 4  # generated images per remaining class and wording
num_inference_steps: int = 50  # sampling steps (notebook 15: shares stop moving between 50 and 100)
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
work_dir: str = "build/several-concepts"  # where the few-shot image sets are written

# %% [markdown]
# ## Set-up: the model, the judge and the method's settings

# %%
seeds = experiment.evaluation_seeds(seeds, fewshot_settings)  # refuses a calibration seed
t_start = time.perf_counter()
config = experiment.fewshot_config(fewshot_settings)
setup = experiment.setup(model, evaluator, device, dtype, None, num_inference_steps, guidance_scale, threads)
print(config, setup, sep="\n")

# %% [markdown]
# ## Erase each set jointly and one after another; judge both and the base model on the same prompts

# %%
images = experiment.image_source(images_dir, n_images, work_dir)
table = evaluation.several_concepts(setup.pipeline, setup.judge, set_sizes, repeats, seeds, images, config, setup.generation,
                                    n_erased, n_others, setup.universe, wordings={w: data.WORDINGS[w] for w in wordings})  # fmt: skip
results.write_csv(table, results_prefix + "several_concepts.csv", sort_by=["n_classes", "seed", "classes", "mode", "wording"])
stated = {"sampling_steps": num_inference_steps, "erased_images_per_class": n_erased, "other_images_per_class": n_others, "few_shot_images": n_images}
summary = evaluation.several_concepts_summary(table, min_ua=min_ua).assign(**stated)
results.write_csv(summary, results_prefix + "several_concepts_summary.csv")
summary.drop(columns=list(stated)).round(3).T

# %% [markdown]
# **What this shows.** The committed run (2026-12-06): seeds 3-7, two random sets per size and seed
# (10 runs per row), 50 sampling steps, 12 images per erased class and 4 per remaining class on each
# wording, the built-in defaults of notebook 02's 50-step calibration (lr 3e-4, 8 epochs: 16 steps
# per class). Both modes erase more as the set grows, because every class adds its images and so its
# steps: UA 0.33 [0.16, 0.53] jointly and 0.55 [0.40, 0.70] one after another for 2 classes, 0.70 and
# 0.69 for 3, 0.83 [0.77, 0.90] and 0.78 [0.70, 0.86] for 5; and both cost the remaining classes
# more: IRA from 0.98 to 0.88 and 0.80 (2 classes), 0.75 and 0.78 (3), 0.54 [0.45, 0.63] and 0.40
# [0.34, 0.46] (5). With 5 classes one after another is clearly harsher on the rest (the intervals
# do not overlap); elsewhere the modes' intervals overlap. Runs that erase the whole set (UA >= 0.9)
# are 1-3 of 10 per row, and none keeps the others within 0.10. **Held-out wordings** (prompts the
# erasure never saw) give the same UA within 0.01 and an IRA 0.00-0.03 lower; the base model judges
# both wordings alike (the same verdicts on every run). The run at the former defaults (lr 1e-3, 2
# epochs, 2026-12-05, paper wordings) erased less with 3 and 5 classes (UA 0.56-0.58 and 0.68) at a
# similar cost (IRA 0.76-0.80 and 0.50-0.59); the former one-seed run's "one after another erases
# clearly more" did not hold over five seeds then, and holds only for 2 classes now.
#
# **Against the paper.** The paper erases one concept at a time and makes no claim here. On the
# built-in model several concepts can be erased in either mode, as partly as single ones (notebook
# 03), at a cost to the remaining classes that grows with the number erased.

# %%
notebook = "notebooks/paper/10-several-concepts.ipynb"
results.record_run(
    notebook, experiment.notebook_parameters(notebook, globals()) | {"config": str(config)},
    [results_prefix + "several_concepts.csv", results_prefix + "several_concepts_summary.csv"], time.perf_counter() - t_start, manifest=results_prefix + "manifest.json",
)

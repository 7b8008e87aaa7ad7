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
# related classes (the grouping of notebook 06) and on the unrelated ones; UCE, which has a
# preservation term of its own, on the same figure; where the erased prompt goes (transition
# matrices); the cost as a time ratio; and whether the anchor changes how easily the concept comes
# back under the attacks of notebook 08.

# %%
import time

import pandas as pd
import torch

from erasure_lib import attacks, data, evaluation, plots, results
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot, uce
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH

# %% tags=parameters
model: str = "builtin"  # 'builtin', a local diffusers folder, or a hub id
classes: list = list(data.CLASSES)  # classes erased, one at a time
learning_rates: list = [1e-3, 3e-3]  # learning rates of every variant
epochs: int = 8  # epochs per run (every checkpoint in eval_epochs is judged)
eval_epochs: list = [1, 2, 4, 8]  # checkpoints judged
anchors: list = [{"neighbours": 3, "weight": 1.0}, {"neighbours": "all", "weight": 1.0}, {"neighbours": "all", "weight": 10.0}]  # preserved variants
default_lr: float = 1e-3  # the setting whose transitions and attacks are reported (the built-in default)
default_epochs: int = 2  # ditto; must be one of eval_epochs
inversion_classes: list = ["shirt", "sneaker", "bag"]  # classes attacked by concept inversion (plain vs the last anchor)
inversion_steps: int = 200  # the attack's step budget (as notebook 08)
inversion_lr: float = 5e-3  # the attack's learning rate (as notebook 08)
seed: int = 0  # picks the images and seeds the erasure
n_erased: int = 16  # generated images of the erased class per evaluation
n_others: int = 4  # generated images of every other class per evaluation
n_eval: int = 16  # generated images per attack prompt set
num_inference_steps: int = 20  # sampling steps
guidance_scale: float = 7.5  # classifier-free guidance
threads: int = 2  # torch CPU threads
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
work_dir: str = "build/keep-the-neighbours"  # where the few-shot image sets are written

# %%
torch.set_num_threads(threads)
generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
inversion = attacks.InversionConfig(steps=inversion_steps, lr=inversion_lr, seed=seed)
vocabulary = (*data.CLASSES, *data.STYLES[1:])
variants = {"plain (paper)": {}}
for anchor in anchors:
    k = len(vocabulary) - 1 if anchor["neighbours"] == "all" else int(anchor["neighbours"])
    name = f"anchor {'all' if k == len(vocabulary) - 1 else k} of {len(vocabulary) - 1}, w={anchor['weight']:g}"
    variants[name] = {"preserve_weight": float(anchor["weight"]), "preserve_neighbours": k, "preserve_vocabulary": vocabulary}
strongest = list(variants)[-1]
if default_epochs not in eval_epochs:
    raise ValueError(f"default_epochs={default_epochs} must be one of eval_epochs={eval_epochs}")
print(*variants, generation, inversion, sep="\n")
t_start = time.perf_counter()
pipeline = load_pipeline(model)
classifier = clf.load_classifier(CLASSIFIER_PATH)

# %% [markdown]
# ## Every class: the plain method and each anchor, over learning rates and checkpoints

# %%
rows, transitions, attack_rows, seconds = [], [], [], {name: [] for name in variants}
for concept in classes:
    images = data.export_concept_images(results.resolve(work_dir) / concept, concept, n=4, seed=seed)
    table = evaluation.erasure_prompt_table([concept], n_erased, n_others)
    classified = evaluation.classify_generated(pipeline, classifier, table, generation)
    rows.append({"erased_class": concept, "method": "base model", "lr": 0.0, "epochs": 0, "retained": "", "probe_ratio": 1.0,
                 **evaluation.summarize_related(classified, concept, data.CLASS_GROUPS)})
    transitions += evaluation.destinations(classified, concept, "base model", seed)
    targets = {"base model": pipeline}
    for name, options in variants.items():
        for lr in learning_rates:
            config = fewshot.FewShotConfig.builtin(seed=seed, lr=lr, epochs=epochs, keep_checkpoints=True, **options)
            result = fewshot.erase(pipeline, concept, images, config, progress_bar=False)
            seconds[name].append(result.optimization_seconds)
            for e in eval_epochs:
                erased = result.apply(pipeline, epoch=e)
                classified = evaluation.classify_generated(erased, classifier, table, generation)
                rows.append({"erased_class": concept, "method": name, "lr": lr, "epochs": e, "retained": ", ".join(result.info["retained"]),
                             "probe_ratio": result.info["probe_ratios"][e - 1], **evaluation.summarize_related(classified, concept, data.CLASS_GROUPS)})
                if (lr, e) == (default_lr, default_epochs):
                    transitions += evaluation.destinations(classified, concept, name, seed)
                    targets[name] = erased
    neighbours = fewshot.nearest_concepts(pipeline, concept, vocabulary, 3)
    edited = uce.erase(pipeline, concept, None, uce.UCEConfig(preserve=tuple(neighbours)), progress_bar=False).apply(pipeline)
    classified = evaluation.classify_generated(edited, classifier, table, generation)
    rows.append({"erased_class": concept, "method": "UCE (preserving the 3 nearest)", "lr": 0.0, "epochs": -1, "retained": ", ".join(neighbours),
                 "probe_ratio": float("nan"), **evaluation.summarize_related(classified, concept, data.CLASS_GROUPS)})
    # the attacks of notebook 08, at the default setting
    for attack, wording in attacks.prompt_variants(concept, data.PARAPHRASES.get(concept)).items():
        prompts = evaluation.wording_table(concept, wording, n_eval)
        for name, p in targets.items():
            share = evaluation.summarize(evaluation.classify_generated(p, classifier, prompts, generation), [concept])["erased_share"]
            attack_rows.append({"erased_class": concept, "attack": f"wording: {attack}", "target": name, "share": share})
    if concept in inversion_classes:
        for name in ("base model", "plain (paper)", strongest):
            attacked = attacks.invert_concept(targets[name], images, inversion)
            prompts = evaluation.wording_table(concept, inversion.placeholder, n_eval)
            share = evaluation.summarize(evaluation.classify_generated(attacked, classifier, prompts, generation), [concept])["erased_share"]
            attack_rows.append({"erased_class": concept, "attack": "concept inversion", "target": name, "share": share})
    print(concept, flush=True)

# %% [markdown]
# ## The front: mean over classes at every setting, and the aim
#
# The aim of the issue: erased share <= 0.10 with the related classes within 0.10 of the base model
# on average, at one setting for all classes (no per-class choice by a classifier).

# %%
table = pd.DataFrame(rows)
results.write_csv(table, results_prefix + "keep_the_neighbours.csv", sort_by=["erased_class", "method", "lr", "epochs"])
summary = evaluation.neighbour_summary(table, max_erased=0.10, max_related_drop=0.10)
results.write_csv(summary, results_prefix + "keep_the_neighbours_summary.csv", sort_by=["method", "lr", "epochs"])
summary

# %%
fig = plots.neighbour_front(pd.read_csv(results.resolve(results_prefix + "keep_the_neighbours.csv")))
results.save_figure(fig, figures_prefix + "keep_the_neighbours.png")

# %% [markdown]
# ## Where the erased prompt goes, with and without the anchor (lr and epochs at the default)

# %%
transitions = pd.DataFrame(transitions)
results.write_csv(transitions, results_prefix + "keep_the_neighbours_transitions.csv", sort_by=["when", "erased_class", "predicted_class"])
fig = plots.transition_heatmaps(transitions, data.CLASSES, panels=["base model", *variants])
results.save_figure(fig, figures_prefix + "keep_the_neighbours_transitions.png")

# %% [markdown]
# ## Does the anchor change how easily the concept comes back? Cost of the anchor.

# %%
attack_table = pd.DataFrame(attack_rows)
results.write_csv(attack_table, results_prefix + "keep_the_neighbours_attacks.csv", sort_by=["erased_class", "attack", "target"])
cost = {name: float(pd.Series(s).median()) for name, s in seconds.items()}
results.write_json({"median_optimization_seconds": cost, "epochs": epochs,
                    "time_ratio_to_plain": {name: c / cost["plain (paper)"] for name, c in cost.items()}},
                   results_prefix + "keep_the_neighbours_cost.json")
display(attack_table.pivot_table(index="attack", columns="target", values="share", aggfunc="mean").round(3))  # noqa: F821
pd.Series(cost).round(3)

# %%
results.record_run(
    "notebooks/paper/12-keep-the-neighbours.ipynb",
    dict(model=model, classes=classes, learning_rates=learning_rates, epochs=epochs, eval_epochs=eval_epochs, anchors=anchors,
         default_lr=default_lr, default_epochs=default_epochs, inversion_classes=inversion_classes, inversion_steps=inversion_steps,
         inversion_lr=inversion_lr, seed=seed, n_erased=n_erased, n_others=n_others, n_eval=n_eval,
         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale),
    [results_prefix + f for f in ("keep_the_neighbours.csv", "keep_the_neighbours_summary.csv", "keep_the_neighbours_transitions.csv",
                                  "keep_the_neighbours_attacks.csv", "keep_the_neighbours_cost.json")]
    + [figures_prefix + "keep_the_neighbours.png", figures_prefix + "keep_the_neighbours_transitions.png"],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)

# %% [markdown]
# # 00 · Train the built-in default model
#
# A small Stable Diffusion of the real architecture (diffusers `AutoencoderKL` + `UNet2DConditionModel`,
# transformers `CLIPTextModel` with CLIP's 49,408-token BPE vocabulary), trained from scratch on real
# Fashion-MNIST in three renderings: `plain`, `sketch` (edge map) and `sepia` (colour tint). Captions
# come from the paper's object and style templates. The notebook also trains the evaluator (a garment
# and style classifier) and reports its held-out accuracy.
#
# Re-running it with the default parameters regenerates `models/builtin/` and `models/classifier/`.

# %%
import time

import matplotlib
import numpy as np
import pandas as pd
import torch

from erasure_lib import builtin, data, results, tokenizer
from erasure_lib.builtin import classifier as clf

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

# %% tags=parameters
seed: int = 0  # seed of every random draw in training
vae_steps: int = 1000  # optimizer steps of the VAE
vae_batch_size: int = 64  # VAE batch size
steps: int = 3500  # optimizer steps of U-Net + text encoder
batch_size: int = 64  # diffusion batch size
lr: float = 5e-4  # peak learning rate of U-Net + text encoder (cosine decay, warm-up)
classifier_steps: int = 1500  # optimizer steps of the evaluator
n_train: int = 60000  # training images used (the first n of the 60k; fewer only for smoke runs)
n_test: int = 10000  # held-out test images the evaluator and the VAE are measured on (the first n of the 10k; fewer only for smoke runs)
threads: int = 2  # torch CPU threads
model_dir: str = "models/builtin"  # where the pipeline is saved (relative to the repo root)
classifier_path: str = "models/classifier/classifier.safetensors"  # where the evaluator is saved
results_prefix: str = "results/"  # folder of the result files
figures_prefix: str = "figures/"  # folder of the figures
checkpoint: str = "runs/builtin-diffusion.pt"  # resumable training state

# %%
torch.set_num_threads(threads)
config = builtin.BuiltinConfig(
    seed=seed, vae_steps=vae_steps, vae_batch_size=vae_batch_size, steps=steps, batch_size=batch_size, lr=lr
)
classifier_config = clf.ClassifierConfig(seed=seed, steps=classifier_steps)
print(config)
print(classifier_config)
t_start = time.perf_counter()

# %% [markdown]
# ## Data: real Fashion-MNIST and the two styles

# %%
train = data.load_fashion_mnist("train").subset(n_train)
test = data.load_fashion_mnist("test").subset(n_test)
print(f"train {train.images.shape}, test {test.images.shape}")
rng = np.random.default_rng(seed)
fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for k, name in enumerate(data.CLASSES):
    i = int(np.flatnonzero(train.labels == k)[0])
    for s, style in enumerate(data.STYLES):
        axes[s, k].imshow(data.render(train.images[i], style))
        axes[s, k].set_axis_off()
        axes[s, k].set_title(data.caption_for(k, style, rng), fontsize=4)
fig.tight_layout()

# %% [markdown]
# ## The evaluator: garment class and style, trained on real images, tested on held-out ones

# %%
(classifier, classifier_losses), classifier_seconds = builtin.timed(clf.train_classifier, classifier_config, train)
accuracy = clf.real_accuracy(classifier, test)
rows = [{"style": style, "class": name, "real_accuracy": accuracy[style][name]} for style in data.STYLES for name in (*data.CLASSES, "all")]
accuracy_table = pd.DataFrame(rows)
style_accuracy = {style: accuracy[style]["style_accuracy"] for style in data.STYLES}
clf.save_classifier(
    classifier, classifier_config, results.resolve(classifier_path),
    {"real_accuracy": accuracy, "train_seconds": classifier_seconds},
)  # fmt: skip
results.write_csv(accuracy_table, results_prefix + "classifier_accuracy.csv")
print(f"trained in {classifier_seconds:.0f} s; style accuracy {style_accuracy}")
accuracy_table.pivot(index="class", columns="style", values="real_accuracy").round(3)

# %% [markdown]
# ## The VAE (f4: 32 px -> 8x8x4 latents) and its scaling factor

# %%
tok = tokenizer.builtin_tokenizer(results.resolve(".cache"), config.max_length)
(vae, vae_losses), vae_seconds = builtin.timed(builtin.train_vae, config, train)
scaling_factor = builtin.set_vae_scaling_factor(vae, config, train)
x = builtin.render_batch(test, np.arange(8), np.arange(8) % 3, np.zeros(8, bool), config.image_size)
with torch.no_grad():
    recon = vae.decode(vae.encode(x).latent_dist.mean).sample
vae_test_mse = float(torch.nn.functional.mse_loss(recon, x))
print(f"VAE trained in {vae_seconds:.0f} s; scaling factor {scaling_factor:.4f}; test MSE {vae_test_mse:.4f}")

# %% [markdown]
# ## U-Net and text encoder, jointly, on the latents (10% empty captions for guidance)

# %%
latents, encode_seconds = builtin.timed(builtin.encode_dataset, vae, config, train)
(unet, text_encoder, diffusion_losses), diffusion_seconds = builtin.timed(
    builtin.train_diffusion, config, train, latents, tok, checkpoint=results.resolve(checkpoint)
)
print(f"encoded in {encode_seconds:.0f} s; U-Net + text encoder trained in {diffusion_seconds:.0f} s")

# %%
pipeline = builtin.assemble_pipeline(config, vae, unet, text_encoder, tok)
n_params = {name: sum(p.numel() for p in m.parameters()) for name, m in [("unet", unet), ("vae", vae), ("text_encoder", text_encoder)]}
training_record = {
    "seconds": {"classifier": classifier_seconds, "vae": vae_seconds, "encode": encode_seconds, "diffusion": diffusion_seconds},
    "parameters": n_params,
    "vae_scaling_factor": scaling_factor,
    "vae_test_mse": vae_test_mse,
    "final_loss_mean_last_100": float(np.mean(diffusion_losses[-100:])),
}
builtin.save_builtin(pipeline, results.resolve(model_dir), config, training_record)
results.write_json(training_record | {"config": config, "classifier_config": classifier_config}, results_prefix + "base_model_training.json")
training_record

# %% [markdown]
# ## Loss curves

# %%
def smooth(values, k=50):
    return np.convolve(values, np.ones(k) / k, mode="valid") if len(values) > k else np.asarray(values)


fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, (name, values) in zip(axes, [("classifier", classifier_losses), ("VAE", vae_losses), ("U-Net + text encoder", diffusion_losses)]):
    ax.plot(values, alpha=0.3, lw=0.5)
    ax.plot(smooth(values), lw=1.5)
    ax.set_title(f"{name} loss")
    ax.set_xlabel("step")
    ax.set_yscale("log")
fig.tight_layout()
results.save_figure(fig, figures_prefix + "base_model_training_loss.png")

# %%
results.record_run(
    "notebooks/00-train-base-model.ipynb",
    dict(n_train=n_train, seed=seed, vae_steps=vae_steps, steps=steps, batch_size=batch_size, lr=lr, classifier_steps=classifier_steps),
    [results_prefix + "classifier_accuracy.csv", results_prefix + "base_model_training.json", figures_prefix + "base_model_training_loss.png", model_dir],
    time.perf_counter() - t_start,
    manifest=results_prefix + "manifest.json",
)
print(f"total {time.perf_counter() - t_start:.0f} s")

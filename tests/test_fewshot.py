"""Few-shot unlearning (Fuchi & Takagi, BMVC 2024): gradient ASCENT on the denoising loss, text encoder only.

All runs use the tiny pipeline of conftest (random weights, 16 px) and 4 real Fashion-MNIST sneakers.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONCEPT, N_CONCEPT_IMAGES, TINY_RESOLUTION, build_tiny_pipeline, state, tiny_config, tree
from diffusers import DDPMScheduler, PNDMScheduler, StableDiffusionPipeline
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer

from erasure_lib.builtin import build_text_encoder
from erasure_lib.data import OBJECT_TEMPLATES, STYLE_TEMPLATES, load_concept_images
from erasure_lib.methods.base import ErasureResult
from erasure_lib.methods.fewshot import (
    TRAINABLE_OPTIONS,
    FewShotConfig,
    check_concept,
    denoising_loss,
    erase,
    preprocess,
    trainable_parameter_names,
)
from erasure_lib.models import install_text_encoder
from erasure_lib.paths import REPO_ROOT

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def run(pipeline: StableDiffusionPipeline, images: object, **options: object) -> ErasureResult:
    return erase(pipeline, CONCEPT, images, FewShotConfig(**options), progress_bar=False)  # type: ignore[arg-type]


def changed_names(before: dict[str, torch.Tensor], after: torch.nn.Module) -> set[str]:
    now = after.state_dict()
    assert now.keys() == before.keys()
    return {k for k in before if not torch.equal(before[k], now[k])}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def layer_part(name: str) -> tuple[int, str] | None:
    """(layer, 'mlp' | 'attn' | 'norm') of an encoder-layer parameter, else None (written independently
    of the library's regex)."""
    m = re.search(r"encoder\.layers\.(\d+)\.([a-z_0-9]+)\.", name)
    if m is None:
        return None
    sub = m.group(2)
    kind = {"mlp": "mlp", "self_attn": "attn"}.get(sub, "norm")
    return int(m.group(1)), kind


def expected_trainable(text_encoder: CLIPTextModel, option: str) -> tuple[int, int]:
    """(number of tensors, number of scalars) that ``option`` trains, from the encoder's config alone."""
    c = text_encoder.config
    n_layers, h, i = c.num_hidden_layers, c.hidden_size, c.intermediate_size
    mlp_tensors, mlp_scalars = 4, (h * i + i) + (i * h + h)  # fc1 w+b, fc2 w+b
    attn_tensors, attn_scalars = 8, 4 * (h * h + h)  # q, k, v, out: w+b each
    if option == "all":
        return len(list(text_encoder.parameters())), sum(p.numel() for p in text_encoder.parameters())
    if option == "mlp-only":
        return n_layers * mlp_tensors, n_layers * mlp_scalars
    if option == "attn-only":
        return n_layers * attn_tensors, n_layers * attn_scalars
    if option == "mlp-attn":
        return n_layers * (mlp_tensors + attn_tensors), n_layers * (mlp_scalars + attn_scalars)
    assert option == "mlp-final-attn"
    return n_layers * mlp_tensors + attn_tensors, n_layers * mlp_scalars + attn_scalars


@pytest.fixture(scope="module")
def erased_mlp(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> dict[str, object]:
    """One run shared by several tests: mlp-only, 3 epochs, per-epoch checkpoints; with snapshots taken
    before it of everything the run must not touch."""
    before = {
        "unet": state(tiny_pipeline.unet),
        "vae": state(tiny_pipeline.vae),
        "text_encoder": state(tiny_pipeline.text_encoder),
        "text_encoder_object": tiny_pipeline.text_encoder,
        "requires_grad": {
            m: [p.requires_grad for p in getattr(tiny_pipeline, m).parameters()]
            for m in ("unet", "vae", "text_encoder")
        },
    }
    result = run(tiny_pipeline, concept_dir, trainable="mlp-only", epochs=3, keep_checkpoints=True)
    return {"result": result, "before": before}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_papers() -> None:
    c = FewShotConfig()
    assert (c.optimizer, c.lr, c.betas, c.adam_eps, c.weight_decay) == ("adam", 1e-5, (0.9, 0.98), 1e-6, 1e-8)
    assert (c.batch_size, c.epochs, c.trainable, c.concept_type) == (2, 4, "mlp-final-attn", "object")
    assert c.flip_p == 0.5 and not c.zero_shot and not c.keep_checkpoints


def test_builtin_settings_and_overrides() -> None:
    b = FewShotConfig.builtin()
    # The paper's structure is kept; lr and epochs are the calibration's choice (notebook 02's CSV).
    paper = FewShotConfig()
    assert (b.batch_size, b.betas, b.adam_eps, b.weight_decay, b.optimizer, b.trainable) == (
        paper.batch_size, paper.betas, paper.adam_eps, paper.weight_decay, paper.optimizer, paper.trainable)
    summary = REPO_ROOT / "results" / "fewshot_calibration_summary.csv"
    if summary.is_file():
        import pandas as pd

        from erasure_lib.evaluation import choose_setting

        choice = choose_setting(pd.read_csv(summary), max_erased_share=0.10, max_others_drop=0.10, min_step=2)
        assert (b.lr, b.epochs) == (choice["lr"], choice["epochs"])
    assert FewShotConfig.builtin(epochs=2, trainable="all").epochs == 2
    assert FewShotConfig.builtin(lr=3e-3).lr == 3e-3


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"trainable": "mlp"}, "trainable"),
        ({"trainable": "MLP-only"}, "trainable"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"zero_shot_images": 0}, "zero_shot_images"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-5}, "lr"),
        ({"concept_type": "scene"}, "concept_type"),
    ],
)
def test_config_rejects_bad_options(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        FewShotConfig(**options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Which parameters train
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [2, 3])
@pytest.mark.parametrize("option", TRAINABLE_OPTIONS)
def test_trainable_parameter_names(option: str, n_layers: int) -> None:
    torch.manual_seed(0)
    encoder = build_text_encoder(tiny_config(text_layers=n_layers))
    assert encoder.config.num_hidden_layers == n_layers
    names = trainable_parameter_names(encoder, option)  # type: ignore[arg-type]
    params = dict(encoder.named_parameters())
    assert len(names) == len(set(names)) and set(names) <= set(params)
    n_tensors, n_scalars = expected_trainable(encoder, option)
    assert len(names) == n_tensors
    assert sum(params[n].numel() for n in names) == n_scalars
    if option == "all":
        assert set(names) == set(params)
        return
    parts = [layer_part(n) for n in names]
    assert None not in parts, "only encoder-layer parameters train"  # no embeddings, no final norm
    kinds = {kind for _, kind in parts}
    assert "norm" not in kinds, "layer norms never train except with 'all'"
    last = n_layers - 1
    mlp_layers = sorted({layer for layer, kind in parts if kind == "mlp"})
    attn_layers = sorted({layer for layer, kind in parts if kind == "attn"})
    if option == "mlp-only":
        assert mlp_layers == list(range(n_layers)) and attn_layers == []
    elif option == "attn-only":
        assert attn_layers == list(range(n_layers)) and mlp_layers == []
    elif option == "mlp-attn":
        assert mlp_layers == attn_layers == list(range(n_layers))
    else:
        assert mlp_layers == list(range(n_layers)) and attn_layers == [last]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            assert f"encoder.layers.{last}.self_attn.{proj}.weight" in {n[n.find("encoder.") :] for n in names}


def test_mlp_attn_is_the_union() -> None:
    torch.manual_seed(0)
    encoder = build_text_encoder(tiny_config())
    mlp = set(trainable_parameter_names(encoder, "mlp-only"))
    attn = set(trainable_parameter_names(encoder, "attn-only"))
    assert not mlp & attn
    assert set(trainable_parameter_names(encoder, "mlp-attn")) == mlp | attn


def test_trainable_rejects_unknown_option(tiny_pipeline: StableDiffusionPipeline) -> None:
    with pytest.raises(ValueError, match="trainable"):
        trainable_parameter_names(tiny_pipeline.text_encoder, "mlp")  # type: ignore[arg-type]


@pytest.mark.parametrize("option", TRAINABLE_OPTIONS)
def test_erase_changes_exactly_the_trainable_parameters(
    option: str, tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    before = state(tiny_pipeline.text_encoder)
    result = run(tiny_pipeline, concept_dir, trainable=option, epochs=1)
    expected = set(trainable_parameter_names(tiny_pipeline.text_encoder, option))  # type: ignore[arg-type]
    assert changed_names(before, result.components["text_encoder"]) == expected
    params = dict(tiny_pipeline.text_encoder.named_parameters())
    assert result.info["trainable_parameters"] == sum(params[n].numel() for n in expected)


def test_final_attention_is_the_last_of_three_layers(tokenizer: CLIPTokenizer, concept_dir: Path) -> None:
    pipeline = build_tiny_pipeline(tokenizer, text_layers=3)
    before = state(pipeline.text_encoder)
    result = run(pipeline, concept_dir, trainable="mlp-final-attn", epochs=1)
    changed = {layer_part(n) for n in changed_names(before, result.components["text_encoder"])}
    assert changed == {(0, "mlp"), (1, "mlp"), (2, "mlp"), (2, "attn")}


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------


def _fixed_batch(pipeline: StableDiffusionPipeline, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator("cpu").manual_seed(seed)
    c, s = pipeline.unet.config.in_channels, pipeline.unet.config.sample_size
    ids = pipeline.tokenizer(
        ["a photo of a sneaker", "a rendering of a sneaker"],
        padding="max_length",
        max_length=32,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return {
        "z0": torch.randn((2, c, s, s), generator=g),
        "noise": torch.randn((2, c, s, s), generator=g),
        "timesteps": torch.tensor([17, 901]),
        "input_ids": ids,
    }


@torch.no_grad()
def test_loss_is_the_negated_denoising_loss(tiny_pipeline: StableDiffusionPipeline) -> None:
    b = _fixed_batch(tiny_pipeline)
    scheduler = DDPMScheduler.from_config(tiny_pipeline.scheduler.config)
    zt = scheduler.add_noise(b["z0"], b["noise"], b["timesteps"])
    hidden = tiny_pipeline.text_encoder(b["input_ids"])[0]
    direct = -F.mse_loss(tiny_pipeline.unet(zt, b["timesteps"], hidden).sample, b["noise"])
    ours = -denoising_loss(
        tiny_pipeline, scheduler, tiny_pipeline.text_encoder, b["z0"], b["input_ids"], b["timesteps"], b["noise"]
    )
    assert ours.ndim == 0
    torch.testing.assert_close(ours, direct, rtol=1e-6, atol=0)
    assert ours.item() < 0


@torch.no_grad()
def test_v_prediction_target_is_the_velocity(tiny_pipeline: StableDiffusionPipeline) -> None:
    b = _fixed_batch(tiny_pipeline, seed=1)
    eps_sched = DDPMScheduler.from_config(tiny_pipeline.scheduler.config)
    v_sched = DDPMScheduler.from_config(tiny_pipeline.scheduler.config, prediction_type="v_prediction")
    # v = sqrt(abar_t) eps - sqrt(1 - abar_t) z0, from the scaled-linear schedule written out here.
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    abar = torch.cumprod(1.0 - betas, 0)[b["timesteps"]].view(-1, 1, 1, 1)
    velocity = abar.sqrt() * b["noise"] - (1 - abar).sqrt() * b["z0"]
    zt = abar.sqrt() * b["z0"] + (1 - abar).sqrt() * b["noise"]
    pred = tiny_pipeline.unet(zt, b["timesteps"], tiny_pipeline.text_encoder(b["input_ids"])[0]).sample
    args = (tiny_pipeline.text_encoder, b["z0"], b["input_ids"], b["timesteps"], b["noise"])
    v_loss = denoising_loss(tiny_pipeline, v_sched, *args)
    torch.testing.assert_close(v_loss, F.mse_loss(pred, velocity), rtol=1e-4, atol=1e-6)
    eps_loss = denoising_loss(tiny_pipeline, eps_sched, *args)
    torch.testing.assert_close(eps_loss, F.mse_loss(pred, b["noise"]), rtol=1e-4, atol=1e-6)
    assert abs(v_loss.item() - eps_loss.item()) > 1e-3


def _resize_flip(image: Image.Image, resolution: int, flip: bool) -> torch.Tensor:
    x = np.asarray(image.convert("RGB").resize((resolution, resolution), Image.BICUBIC), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(x[:, ::-1] if flip else x)).permute(2, 0, 1)


@pytest.mark.parametrize(
    ("prediction_type", "concept_type"), [("epsilon", "object"), ("v_prediction", "object"), ("epsilon", "style")]
)
def test_first_step_loss_written_out(
    prediction_type: str, concept_type: str, tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    """The paper's steps 1-4 written out by hand, with the draws in the order the module documents
    (numpy rng: flips then templates; torch generator: VAE sample, order, t, eps): the first logged
    loss must be minus the plain denoising loss of the ORIGINAL encoder."""
    scheduler = PNDMScheduler.from_config(tiny_pipeline.scheduler.config, prediction_type=prediction_type)
    pipeline = StableDiffusionPipeline(**(tiny_pipeline.components | {"scheduler": scheduler}))
    pipeline.set_progress_bar_config(disable=True)
    seed = 7
    config = FewShotConfig(epochs=1, seed=seed, concept_type=concept_type)  # type: ignore[arg-type]
    result = erase(pipeline, CONCEPT, concept_dir, config, progress_bar=False)

    with torch.no_grad():
        templates = OBJECT_TEMPLATES if concept_type == "object" else STYLE_TEMPLATES
        expected = _first_loss_by_hand(
            pipeline, tiny_pipeline.text_encoder, concept_dir, seed, prediction_type, templates
        )
    assert result.losses[0] == pytest.approx(expected, rel=1e-4)


def _first_loss_by_hand(
    pipeline: StableDiffusionPipeline,
    encoder: CLIPTextModel,
    concept_dir: Path,
    seed: int,
    prediction_type: str,
    templates: tuple[str, ...],
) -> float:
    scheduler = pipeline.scheduler
    rng, gen = np.random.default_rng(seed), torch.Generator("cpu").manual_seed(seed)
    images = load_concept_images(concept_dir)
    x = torch.stack([_resize_flip(im, TINY_RESOLUTION, rng.random() < 0.5) for im in images])
    dist = pipeline.vae.encode(x).latent_dist
    z0_all = (dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen)) * pipeline.vae.config.scaling_factor
    batch = torch.randperm(N_CONCEPT_IMAGES, generator=gen)[:2]
    prompts = [templates[int(rng.integers(len(templates)))].format(CONCEPT) for _ in batch]
    ids = pipeline.tokenizer(
        prompts, padding="max_length", max_length=32, truncation=True, return_tensors="pt"
    ).input_ids
    t = torch.randint(0, 1000, (2,), generator=gen)
    z0 = z0_all[batch]
    eps = torch.randn(z0.shape, generator=gen)
    abar = DDPMScheduler.from_config(scheduler.config).alphas_cumprod[t].view(-1, 1, 1, 1)
    zt = abar.sqrt() * z0 + (1 - abar).sqrt() * eps
    target = eps if prediction_type == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * z0
    pred = pipeline.unet(zt, t, encoder(ids)[0]).sample
    return -F.mse_loss(pred, target).item()


# --------------------------------------------------------------------------------------------
# What erase changes and what it leaves alone
# --------------------------------------------------------------------------------------------


def test_frozen_components_are_bit_identical(erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline) -> None:
    before = erased_mlp["before"]
    assert same_state(before["unet"], tiny_pipeline.unet.state_dict())
    assert same_state(before["vae"], tiny_pipeline.vae.state_dict())
    assert all(p.grad is None for p in tiny_pipeline.unet.parameters())
    assert all(p.grad is None for p in tiny_pipeline.vae.parameters())
    for name, flags in before["requires_grad"].items():
        assert [p.requires_grad for p in getattr(tiny_pipeline, name).parameters()] == flags, name


def test_pipeline_text_encoder_is_not_modified(erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline) -> None:
    before, result = erased_mlp["before"], erased_mlp["result"]
    assert tiny_pipeline.text_encoder is before["text_encoder_object"]
    assert same_state(before["text_encoder"], tiny_pipeline.text_encoder.state_dict())
    assert result.components["text_encoder"] is not tiny_pipeline.text_encoder


def test_returned_encoder_differs_only_in_trainable_parameters(erased_mlp: dict) -> None:
    before, result = erased_mlp["before"], erased_mlp["result"]
    encoder = result.components["text_encoder"]
    changed = changed_names(before["text_encoder"], encoder)
    assert changed and all(layer_part(n) is not None and layer_part(n)[1] == "mlp" for n in changed)
    assert len(changed) == 4 * encoder.config.num_hidden_layers
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_loss_history_and_info(erased_mlp: dict) -> None:
    result = erased_mlp["result"]
    assert result.method == "fewshot" and result.concept == CONCEPT
    assert len(result.losses) == 3 * math.ceil(N_CONCEPT_IMAGES / 2)
    assert all(isinstance(v, float) and math.isfinite(v) and v < 0 for v in result.losses)
    assert result.info["n_images"] == N_CONCEPT_IMAGES
    assert result.info["resolution"] == TINY_RESOLUTION
    assert result.setup_seconds > 0 and result.optimization_seconds > 0
    assert result.total_seconds == pytest.approx(result.setup_seconds + result.optimization_seconds)


def test_uneven_batches(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    paths = sorted(concept_dir.glob("*.png"))[:3]
    result = run(tiny_pipeline, paths, epochs=2, batch_size=2)
    assert len(result.losses) == 2 * 2  # ceil(3 / 2) steps per epoch
    assert result.info["n_images"] == 3


def test_pil_images_give_the_same_result_as_the_folder(
    tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    pil = [Image.open(p) for p in sorted(concept_dir.glob("*.png"))]
    a = run(tiny_pipeline, concept_dir, epochs=1)
    b = run(tiny_pipeline, pil, epochs=1)
    assert a.losses == b.losses
    assert same_state(state(a.components["text_encoder"]), state(b.components["text_encoder"]))


@torch.no_grad()
def _held_out_loss(pipeline: StableDiffusionPipeline, encoder: CLIPTextModel, concept_dir: Path) -> float:
    """Denoising loss of the concept prompt on the concept's images, with t and eps fixed."""
    x = torch.stack([_resize_flip(im, TINY_RESOLUTION, False) for im in load_concept_images(concept_dir)])
    z0 = pipeline.vae.encode(x).latent_dist.mean * pipeline.vae.config.scaling_factor
    z0 = z0.repeat(4, 1, 1, 1)
    g = torch.Generator("cpu").manual_seed(1234)
    eps = torch.randn(z0.shape, generator=g)
    t = torch.linspace(50, 950, len(z0)).long()
    prompts = [OBJECT_TEMPLATES[k].format(CONCEPT) for k in range(len(z0))]
    ids = pipeline.tokenizer(
        prompts, padding="max_length", max_length=32, truncation=True, return_tensors="pt"
    ).input_ids
    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    return denoising_loss(pipeline, scheduler, encoder, z0, ids, t, eps).item()


def test_gradient_ascent_increases_the_denoising_loss(
    tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    result = run(tiny_pipeline, concept_dir, lr=1e-2, epochs=6)
    before = _held_out_loss(tiny_pipeline, tiny_pipeline.text_encoder, concept_dir)
    after = _held_out_loss(tiny_pipeline, result.components["text_encoder"], concept_dir)
    # A random U-Net listens little to its text, so the effect is small, but far above float noise (1e-7).
    assert after > before + 5e-3, (before, after)
    # and the logged ascent loss goes down (the denoising loss it negates goes up)
    assert np.mean(result.losses[-4:]) < np.mean(result.losses[:4])


def test_the_update_points_uphill(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    """With a small step the update delta is first-order: theta0 + delta raises the held-out denoising
    loss and theta0 - delta lowers it, so the sign of the update is ascent, not just any change."""
    result = run(tiny_pipeline, concept_dir, lr=1e-3, epochs=6)
    erased = result.components["text_encoder"]
    original = tiny_pipeline.text_encoder.state_dict()
    mirrored = build_text_encoder(tiny_config())
    mirrored.load_state_dict({k: 2 * original[k] - v for k, v in erased.state_dict().items()})
    mirrored.eval()
    loss = {
        name: _held_out_loss(tiny_pipeline, enc, concept_dir)
        for name, enc in (("minus", mirrored), ("original", tiny_pipeline.text_encoder), ("plus", erased))
    }
    assert loss["minus"] + 1e-3 < loss["original"] < loss["plus"] - 1e-3, loss


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_other_optimizers_run(optimizer: str, tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    before = state(tiny_pipeline.text_encoder)
    result = run(tiny_pipeline, concept_dir, optimizer=optimizer, lr=1e-2, epochs=1)
    assert changed_names(before, result.components["text_encoder"])
    assert len(result.losses) == 2


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights(
    tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    a = run(tiny_pipeline, concept_dir, epochs=1, seed=3)
    b = run(tiny_pipeline, concept_dir, epochs=1, seed=3)
    c = run(tiny_pipeline, concept_dir, epochs=1, seed=4)
    sa, sb, sc = (state(r.components["text_encoder"]) for r in (a, b, c))
    assert a.losses == b.losses
    assert same_state(sa, sb)
    assert a.losses != c.losses
    assert not same_state(sa, sc)


# --------------------------------------------------------------------------------------------
# Zero-shot
# --------------------------------------------------------------------------------------------


def test_zero_shot_without_images(tiny_pipeline: StableDiffusionPipeline) -> None:
    before = state(tiny_pipeline.text_encoder)
    result = run(tiny_pipeline, None, zero_shot=True, zero_shot_images=3, batch_size=2, epochs=2)
    assert result.info["n_images"] == 3
    assert len(result.losses) == 2 * 2
    assert all(v < 0 for v in result.losses)
    assert changed_names(before, result.components["text_encoder"])


def test_no_images_without_zero_shot(tiny_pipeline: StableDiffusionPipeline) -> None:
    with pytest.raises(ValueError, match="zero_shot"):
        run(tiny_pipeline, None)


# --------------------------------------------------------------------------------------------
# Bad inputs: one clear error each, nothing written
# --------------------------------------------------------------------------------------------


def _bad_input(kind: str, root: Path, concept_dir: Path) -> tuple[str, object]:
    if kind == "empty-concept":
        return "", concept_dir
    if kind == "blank-concept":
        return "   \t", concept_dir
    if kind == "long-concept":
        return "word " * 40, concept_dir
    if kind == "missing-folder":
        return CONCEPT, root / "no-such-folder"
    if kind == "empty-folder":
        (root / "empty").mkdir()
        return CONCEPT, root / "empty"
    assert kind == "corrupt-image"
    folder = root / "corrupt"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG garbage" * 8)
    return CONCEPT, folder


@pytest.mark.parametrize(
    ("kind", "error", "pattern"),
    [
        ("empty-concept", ValueError, "concept is empty"),
        ("blank-concept", ValueError, "concept is empty"),
        ("long-concept", ValueError, "too long"),
        ("missing-folder", FileNotFoundError, "no-such-folder"),
        ("empty-folder", ValueError, "empty"),
        ("corrupt-image", ValueError, "b.png"),
    ],
)
def test_bad_inputs(
    kind: str,
    error: type[Exception],
    pattern: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_pipeline: StableDiffusionPipeline,
    concept_dir: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    concept, images = _bad_input(kind, tmp_path, concept_dir)
    files_before, dirs_before = tree(tmp_path), sorted(p for p in tmp_path.rglob("*"))
    concept_files = tree(concept_dir)
    encoder_before = state(tiny_pipeline.text_encoder)
    flags_before = [p.requires_grad for p in tiny_pipeline.unet.parameters()]
    with pytest.raises(error, match=pattern):
        erase(tiny_pipeline, concept, images, FewShotConfig(epochs=1), progress_bar=False)
    assert tree(tmp_path) == files_before and sorted(tmp_path.rglob("*")) == dirs_before
    assert tree(concept_dir) == concept_files
    assert same_state(encoder_before, tiny_pipeline.text_encoder.state_dict())
    assert [p.requires_grad for p in tiny_pipeline.unet.parameters()] == flags_before


@pytest.mark.parametrize(("concept_type", "templates"), [("object", OBJECT_TEMPLATES), ("style", STYLE_TEMPLATES)])
def test_concept_length_limit_is_exact(
    concept_type: str, templates: tuple[str, ...], tiny_pipeline: StableDiffusionPipeline
) -> None:
    tok = tiny_pipeline.tokenizer
    limit = tok.model_max_length

    def longest(concept: str) -> int:
        return max(len(tok(t.format(concept)).input_ids) for t in templates)

    k = next(k for k in range(1, 64) if longest(" ".join(["word"] * k)) > limit)
    check_concept(tiny_pipeline, " ".join(["word"] * (k - 1)), concept_type)  # type: ignore[arg-type]  # exactly fits
    assert longest(" ".join(["word"] * (k - 1))) == limit
    with pytest.raises(ValueError, match=f"allows {limit}"):
        check_concept(tiny_pipeline, " ".join(["word"] * k), concept_type)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Checkpoints, apply, install, save
# --------------------------------------------------------------------------------------------


def test_one_checkpoint_per_epoch(erased_mlp: dict) -> None:
    result = erased_mlp["result"]
    encoder = result.components["text_encoder"]
    trainable = set(trainable_parameter_names(encoder, "mlp-only"))
    assert len(result.checkpoints) == 3
    for ckpt in result.checkpoints:
        assert set(ckpt) == trainable
    # the last checkpoint is the returned encoder; earlier ones differ from it
    final = encoder.state_dict()
    assert all(torch.equal(result.checkpoints[-1][k], final[k]) for k in trainable)
    assert not all(torch.equal(result.checkpoints[0][k], final[k]) for k in trainable)


def test_checkpoints_are_not_kept_by_default(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    result = run(tiny_pipeline, concept_dir, epochs=1)
    assert result.checkpoints == []
    with pytest.raises(ValueError, match="keep_checkpoints"):
        result.apply(tiny_pipeline, epoch=1)


@pytest.mark.parametrize("epoch", [1, 2, 3])
def test_apply_at_epoch(epoch: int, erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline) -> None:
    result, before = erased_mlp["result"], erased_mlp["before"]
    new = result.apply(tiny_pipeline, epoch=epoch)
    assert new is not tiny_pipeline and isinstance(new, StableDiffusionPipeline)
    assert new.unet is tiny_pipeline.unet and new.vae is tiny_pipeline.vae and new.tokenizer is tiny_pipeline.tokenizer
    weights = new.text_encoder.state_dict()
    ckpt = result.checkpoints[epoch - 1]
    for k, v in weights.items():
        assert torch.equal(v, ckpt[k] if k in ckpt else before["text_encoder"][k]), k
    # the original pipeline keeps its original encoder
    assert tiny_pipeline.text_encoder is before["text_encoder_object"]
    assert same_state(before["text_encoder"], tiny_pipeline.text_encoder.state_dict())
    assert new._progress_bar_config.get("disable") is True


def test_epoch_checkpoint_equals_a_shorter_run(
    erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline, concept_dir: Path
) -> None:
    """Epoch k of a 3-epoch run is what a k-epoch run with the same seed returns (fixed epoch count, no schedule)."""
    result = erased_mlp["result"]
    short = run(tiny_pipeline, concept_dir, trainable="mlp-only", epochs=1)
    applied = result.apply(tiny_pipeline, epoch=1).text_encoder
    assert same_state(state(short.components["text_encoder"]), state(applied))
    assert short.losses == result.losses[:2]


def test_apply_without_epoch_and_bad_epoch(erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline) -> None:
    result = erased_mlp["result"]
    assert result.apply(tiny_pipeline).text_encoder is result.components["text_encoder"]
    for bad in (0, 4):
        with pytest.raises(ValueError, match="epoch"):
            result.apply(tiny_pipeline, epoch=bad)


def test_applied_pipeline_generates_differently(erased_mlp: dict, tiny_pipeline: StableDiffusionPipeline) -> None:
    new = erased_mlp["result"].apply(tiny_pipeline)

    def sample(p: StableDiffusionPipeline) -> np.ndarray:
        return p(
            "a photo of a sneaker",
            num_inference_steps=2,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
        ).images

    a, b = sample(tiny_pipeline), sample(new)
    assert a.shape == b.shape == (1, 16, 16, 3)
    assert not np.array_equal(a, b)


def test_install_replaces_in_place(
    erased_mlp: dict, fresh_pipeline: StableDiffusionPipeline, tiny_pipeline: StableDiffusionPipeline
) -> None:
    result, before = erased_mlp["result"], erased_mlp["before"]
    out = result.install(fresh_pipeline)
    assert out is fresh_pipeline
    assert fresh_pipeline.text_encoder is result.components["text_encoder"]
    assert tiny_pipeline.text_encoder is before["text_encoder_object"]


def test_save_and_load_back(erased_mlp: dict, tmp_path: Path, fresh_pipeline: StableDiffusionPipeline) -> None:
    result = erased_mlp["result"]
    out = tmp_path / "erased" / "sneaker"
    assert result.save(out, base_model="tiny") == out
    assert (out / "text_encoder" / "model.safetensors").is_file()
    meta = json.loads((out / "erasure.json").read_text())
    assert meta["method"] == "fewshot" and meta["concept"] == CONCEPT and meta["base_model"] == "tiny"
    assert meta["config"]["trainable"] == "mlp-only" and meta["config"]["epochs"] == 3
    assert meta["config"]["lr"] == 1e-5 and meta["config"]["betas"] == [0.9, 0.98]
    assert meta["changed_components"] == ["text_encoder"]
    assert meta["steps"] == len(result.losses) and meta["final_loss"] == result.losses[-1]
    assert meta["setup_seconds"] == result.setup_seconds and meta["optimization_seconds"] == result.optimization_seconds
    assert meta["n_images"] == N_CONCEPT_IMAGES
    assert "torch" in meta["versions"]
    reloaded = CLIPTextModel.from_pretrained(out / "text_encoder")
    assert same_state(state(reloaded), state(result.components["text_encoder"]))
    # models.install_text_encoder accepts the erasure folder or its text_encoder/ subfolder
    install_text_encoder(fresh_pipeline, out)
    assert same_state(state(fresh_pipeline.text_encoder), state(reloaded))
    assert sorted(p.name for p in out.parent.iterdir()) == ["sneaker"]  # no temp folders left


def test_save_refuses_to_overwrite(erased_mlp: dict, tmp_path: Path) -> None:
    result = erased_mlp["result"]
    out = tmp_path / "erased"
    result.save(out, base_model="tiny")
    (out / "marker").write_text("first save")
    before = tree(out)
    with pytest.raises(FileExistsError, match="erased"):
        result.save(out, base_model="tiny")
    assert tree(out) == before
    result.save(out, base_model="tiny", overwrite=True)
    assert not (out / "marker").exists() and (out / "erasure.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erased"]


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def test_preprocess_resizes_scales_and_flips() -> None:
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[:, :15] = 255  # white left half
    image = Image.fromarray(arr)
    plain = preprocess([image], 16, 0.0, np.random.default_rng(0))
    flipped = preprocess([image], 16, 1.0, np.random.default_rng(0))
    assert plain.shape == flipped.shape == (1, 3, 16, 16) and plain.dtype == torch.float32
    assert -1.0 <= plain.min() and plain.max() <= 1.0
    assert plain[0, :, :, 0].mean() > 0.9 and plain[0, :, :, -1].mean() < -0.9
    torch.testing.assert_close(flipped, plain.flip(-1))
    gray = preprocess([Image.new("L", (5, 5), 0)], 8, 0.0, np.random.default_rng(0))
    assert gray.shape == (1, 3, 8, 8) and torch.all(gray == -1.0)

"""SPM (Lyu et al., CVPR 2024): one-dimensional adapters on a copy of the U-Net, merged into its weights.

Runs use conftest's ``tiny_pipeline`` fixture (random weights, 16 px, 8x8 latents) and SD v1.4's
architecture at the reduced "tiny" width (:func:`erasure_lib.sd14.build_random_pipeline`), a few
iterations each. Nothing is imported from conftest, so the module works whether or not tests/ is a package.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors import safe_open
from torch import nn

from erasure_lib import sd14
from erasure_lib.methods import get_method
from erasure_lib.methods.base import ErasureResult, NonFiniteLossError
from erasure_lib.methods.spm import (
    Adapter,
    AdapterWeights,
    SPMConfig,
    adapted_layer_names,
    adapter_key,
    erase,
    latent_sides,
    sample_anchor_embeddings,
    save_adapter,
    spm_loss,
)
from erasure_lib.paths import BUILTIN_MODEL_DIR

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

CONCEPT = "sneaker"
# Few, short iterations with a large constant lr, so that every adapter moves visibly.
FAST = {"iterations": 2, "max_denoising_steps": 3, "lr": 1e-2, "lr_warmup_steps": 0, "lr_scheduler": "constant"}


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run(pipeline: StableDiffusionPipeline, concept: str = CONCEPT, **options: object) -> ErasureResult:
    return erase(pipeline, concept, None, SPMConfig(**(FAST | options)), progress_bar=False)  # type: ignore[arg-type]


def encode(pipeline: StableDiffusionPipeline, prompt: str) -> torch.Tensor:
    tok = pipeline.tokenizer
    ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipeline.text_encoder(ids)[0]


def check_rank_one_edit(base: UNet2DConditionModel, result: ErasureResult) -> None:
    """Only the adapted layers' weights change, each by the rank-1 matrix (alpha / r) up @ down it kept."""
    config: SPMConfig = result.config
    names = adapted_layer_names(base, config.modules)
    before, after = base.state_dict(), result.components["unet"].state_dict()
    assert after.keys() == before.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"{n}.weight" for n in names}
    weights: AdapterWeights = result.info["adapter"]
    assert len(weights.layers) == len(names) == result.info["adapted_layers"]
    for name in names:
        delta = after[f"{name}.weight"].double() - before[f"{name}.weight"].double()
        matrix = delta.flatten(1)  # (d_out, d_in) for Linear and 1x1 Conv2d alike
        # fp32 rounding of W' = W + delta is full rank at ~1e-7 |W|; rtol sets it apart from the edit
        assert int(torch.linalg.matrix_rank(matrix, rtol=1e-3)) == 1, name
        key = adapter_key(name)
        up = weights.state_dict[f"{key}.lora_up.weight"].double().flatten(1)
        down = weights.state_dict[f"{key}.lora_down.weight"].double().flatten(1)
        assert up.shape[1] == down.shape[0] == 1
        expected = config.alpha / config.rank * (up @ down)
        torch.testing.assert_close(matrix, expected, atol=1e-6, rtol=1e-4, msg=name)


@pytest.fixture(scope="module")
def sd14_tiny() -> StableDiffusionPipeline:
    """SD v1.4's architecture (at the tiny scale's reduced widths), random weights, at 128 px:
    16x16 latents, so that the mid-block attention sees 2x2 tokens (at the default 64 px it sees one
    token, and a one-token self-attention gives its query and key projections no gradient)."""
    if not (BUILTIN_MODEL_DIR / "tokenizer").is_dir():
        pytest.skip("the repository's CLIP tokenizer (models/builtin/tokenizer) is missing")
    return sd14.build_random_pipeline("tiny", seed=0, resolution=128)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_published_ones() -> None:
    """configs/snoopy/{config,prompt}.yaml of Con6924/SPM, and train_spm.py's sampling guidance 3."""
    c = SPMConfig()
    assert (c.iterations, c.lr, c.lr_scheduler, c.lr_warmup_steps, c.lr_num_cycles) == (
        3000, 1e-4, "cosine_with_restarts", 500, 3,
    )
    assert (c.rank, c.alpha, c.negative_guidance, c.la_strength, c.anchor_batch_size) == (1, 1.0, 1.0, 1000.0, 4)
    assert (c.max_denoising_steps, c.start_guidance, c.dynamic_resolution) == (30, 3.0, True)
    assert (c.neutral, c.template, c.anchor_prompts, c.seed) == ("", "{}", (), 0)
    assert c.modules == "xattn"  # the issue's choice; the authors' is "transformer"


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"iterations": 0}, "iterations"),
        ({"rank": 0}, "rank"),
        ({"anchor_batch_size": 0}, "anchor_batch_size"),
        ({"lr_num_cycles": 0}, "lr_num_cycles"),
        ({"max_denoising_steps": 1}, "max_denoising_steps"),
        ({"lr_warmup_steps": -1}, "lr_warmup_steps"),
        ({"lr": 0.0}, "lr"),
        ({"alpha": 0.0}, "alpha"),
        ({"lr_scheduler": "cosine"}, "lr_scheduler"),
        ({"modules": "attn2"}, "modules"),
        ({"negative_guidance": -1.0}, "negative_guidance"),
        ({"la_strength": -1.0}, "la_strength"),
        ({"start_guidance": -0.1}, "start_guidance"),
        ({"anchor_prompts": "shirt"}, "anchor_prompts"),
        ({"anchor_prompts": ("shirt", " ")}, "empty prompt"),
        ({"template": "a photo"}, "template"),
        ({"iterations": 2, "checkpoint_iterations": (3,)}, "outside 1..2"),
        ({"checkpoint_iterations": 5}, "not a single value"),
    ],
)
def test_config_rejects_bad_options(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        SPMConfig(**options)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        SPMConfig().lr = 1.0  # type: ignore[misc]


def test_registered_by_name() -> None:
    assert get_method("spm") is erase


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def test_loss_by_hand() -> None:
    """Constant tensors: erase target 0 - 1.5 (2 - 0) = -3, so (1 - (-3))^2 = 16; anchors (1 - 0.5)^2 = 0.25."""
    shape = (1, 4, 2, 2)
    e_target, e_pos, e_neu = torch.full(shape, 1.0), torch.full(shape, 2.0), torch.zeros(shape)
    e_anchor, e_anchor_frozen = torch.ones((3, 4, 2, 2)), torch.full((3, 4, 2, 2), 0.5)
    loss, erase_loss, anchor_loss = spm_loss(e_target, e_pos, e_neu, e_anchor, e_anchor_frozen, 1.5, 1000.0)
    assert (erase_loss.item(), anchor_loss.item(), loss.item()) == (16.0, 0.25, 16.0 + 250.0)
    loss, _, anchor_loss = spm_loss(e_target, e_pos, e_neu, None, None, 1.5, 1000.0)
    assert (loss.item(), anchor_loss.item()) == (16.0, 0.0)
    # eta = 1 is ESD's target 2 e_n - e_p; random tensors against the formula written out
    g = torch.Generator("cpu").manual_seed(0)
    a, p, n = (torch.randn(shape, generator=g) for _ in range(3))
    torch.testing.assert_close(spm_loss(a, p, n, None, None, 1.0, 0.0)[0], ((a - (2 * n - p)) ** 2).mean())


@pytest.mark.parametrize("conv", [False, True])
def test_adapter_starts_as_the_base_layer_and_merges_exactly(conv: bool) -> None:
    torch.manual_seed(0)
    base = nn.Conv2d(6, 5, 1) if conv else nn.Linear(6, 5)
    x = torch.randn(2, 6, 3, 3) if conv else torch.randn(2, 3, 6)
    adapter = Adapter(copy.deepcopy(base), rank=1, alpha=1.0, generator=torch.Generator("cpu").manual_seed(0))
    bound = 1 / math.sqrt(6)  # Kaiming-uniform with a = sqrt(5): U(-1/sqrt(d_in), 1/sqrt(d_in))
    assert adapter.down.shape == (1, 6) and adapter.down.abs().max() <= bound and not adapter.up.any()
    torch.testing.assert_close(adapter(x), base(x))
    with torch.no_grad():
        adapter.up.normal_(generator=torch.Generator("cpu").manual_seed(1))
    merged = copy.deepcopy(base)
    with torch.no_grad():
        merged.weight.add_(adapter.up @ adapter.down if not conv else (adapter.up @ adapter.down)[:, :, None, None])
    torch.testing.assert_close(adapter(x), merged(x), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(adapter.delta_weight(), merged.weight - base.weight, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="1x1 Conv2d"):
        Adapter(nn.Conv2d(6, 5, 3), 1, 1.0, torch.Generator("cpu"))


def test_adapted_layers(tiny_pipeline: StableDiffusionPipeline) -> None:
    unet = tiny_pipeline.unet
    xattn = adapted_layer_names(unet, "xattn")
    transformer = adapted_layer_names(unet, "transformer")
    assert xattn and all(".attn2." in n for n in xattn)
    assert {n.rsplit("attn2.", 1)[1] for n in xattn} == {"to_q", "to_k", "to_v", "to_out.0"}
    assert len(xattn) == 4 * sum(1 for n, _ in unet.named_modules() if n.endswith(".attn2"))
    assert set(xattn) < set(transformer)
    leaves = {n.rsplit(".", 1)[-1] for n in transformer}
    assert {"proj_in", "proj_out", "proj"} <= leaves  # the authors' default also adapts proj_in/out and the FF
    assert any(".attn1." in n for n in transformer)
    with pytest.raises(ValueError, match="modules"):
        adapted_layer_names(unet, "all")  # type: ignore[arg-type]


def test_anchor_sampling() -> None:
    target = torch.randn((1, 7, 5), generator=torch.Generator("cpu").manual_seed(0)) * 3
    a = sample_anchor_embeddings(target, 4, torch.Generator("cpu").manual_seed(1))
    b = sample_anchor_embeddings(target, 4, torch.Generator("cpu").manual_seed(1))
    assert a.shape == (4, 7, 5) and torch.equal(a, b)
    ratios = a.flatten(1).norm(dim=1) / target.norm()
    assert ((ratios >= 0.8 - 1e-6) & (ratios <= 1.2 + 1e-6)).all()  # s ~ U(0.8, 1.2) times ||target||
    with pytest.raises(ValueError, match="norm"):
        sample_anchor_embeddings(torch.zeros((1, 3, 2)), 1, torch.Generator("cpu"))


def test_latent_sides() -> None:
    def unet(size: int, levels: int) -> object:
        return SimpleNamespace(config=SimpleNamespace(sample_size=size, block_out_channels=[1] * levels))

    assert latent_sides(unet(64, 4), True) == [32, 40, 48, 56, 64]  # SD v1.4: 256..512 px in 64 px steps
    assert latent_sides(unet(64, 4), False) == [64]
    assert latent_sides(unet(8, 2), True) == [4, 6, 8]  # the built-in and the tiny test model
    assert latent_sides(unet(8, 4), True) == [8]  # the reduced-width SD v1.4: only its own size fits


# --------------------------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------------------------


def test_first_loss_written_out(tiny_pipeline: StableDiffusionPipeline) -> None:
    """One iteration recomputed with diffusers: the adapters' Kaiming draws, t_enc and the start noise
    come from one CPU generator; t_enc guided DDIM steps; before the first update up = 0, so the adapted
    model is the frozen one: L_erase = || e_p - (e_n - eta (e_p - e_n)) ||^2 = (1 + eta)^2 ||e_p - e_n||^2
    and L_anchor = 0."""
    config = SPMConfig(iterations=1, max_denoising_steps=5, negative_guidance=1.5, start_guidance=2.0,
                       dynamic_resolution=False, seed=3)
    result = erase(tiny_pipeline, CONCEPT, None, config, progress_bar=False)

    unet = tiny_pipeline.unet
    g = torch.Generator("cpu").manual_seed(3)
    modules = dict(unet.named_modules())
    for name in adapted_layer_names(unet, "xattn"):
        nn.init.kaiming_uniform_(torch.empty(1, modules[name].in_features), a=math.sqrt(5), generator=g)
    t_enc = int(torch.randint(1, 5, (1,), generator=g))
    z = torch.randn((1, 4, 8, 8), generator=g)
    scheduler = DDIMScheduler.from_config(tiny_pipeline.scheduler.config, clip_sample=False)  # the reference does not clip x_0
    scheduler.set_timesteps(5)
    emb_0, emb_p = encode(tiny_pipeline, ""), encode(tiny_pipeline, CONCEPT)
    with torch.no_grad():
        for t in scheduler.timesteps[:t_enc]:
            e_u, e_c = unet(z, t, emb_0).sample, unet(z, t, emb_p).sample
            z = scheduler.step(e_u + 2.0 * (e_c - e_u), t, z).prev_sample
        t = scheduler.timesteps[t_enc]
        e_p, e_n = unet(z, t, emb_p).sample, unet(z, t, emb_0).sample
    expected = (1 + 1.5) ** 2 * F.mse_loss(e_p, e_n).item()
    assert result.info["stop_steps"] == [t_enc] and result.info["latent_sizes"] == [(8, 8)]
    assert result.info["erase_losses"][0] == pytest.approx(expected, rel=1e-4)
    assert result.info["anchor_losses"][0] < 1e-10
    assert result.losses[0] == pytest.approx(expected, rel=1e-4)


def test_training_lowers_the_erase_loss(tiny_pipeline: StableDiffusionPipeline) -> None:
    """On held-out noise at the first sampled timestep, the erased U-Net is closer to the erasing target."""
    result = run(tiny_pipeline, iterations=15, max_denoising_steps=2, la_strength=0.0, dynamic_resolution=False)
    assert set(result.info["stop_steps"]) == {1} and result.info["anchor_losses"] == [0.0] * 15
    z = torch.randn((3, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(123))
    scheduler = DDIMScheduler.from_config(tiny_pipeline.scheduler.config)
    scheduler.set_timesteps(2)
    t = scheduler.timesteps[1]
    emb_0, emb_p = encode(tiny_pipeline, "").expand(3, -1, -1), encode(tiny_pipeline, CONCEPT).expand(3, -1, -1)
    with torch.no_grad():
        e_0, e_p = tiny_pipeline.unet(z, t, emb_0).sample, tiny_pipeline.unet(z, t, emb_p).sample
        target = 2 * e_0 - e_p
        erased = result.components["unet"](z, t, emb_p).sample
    assert F.mse_loss(erased, target) < 0.5 * F.mse_loss(e_p, target)


@pytest.mark.parametrize("modules", ["xattn", "transformer"])
def test_only_adapted_weights_change_by_rank_one(modules: str, tiny_pipeline: StableDiffusionPipeline) -> None:
    result = run(tiny_pipeline, modules=modules)
    check_rank_one_edit(tiny_pipeline.unet, result)
    assert result.info["trainable_parameters"] == sum(
        m.in_features + m.out_features if isinstance(m, nn.Linear) else m.in_channels + m.out_channels
        for n, m in tiny_pipeline.unet.named_modules() if n in set(adapted_layer_names(tiny_pipeline.unet, modules))  # type: ignore[arg-type]
    )


def test_pipeline_is_not_modified(tiny_pipeline: StableDiffusionPipeline) -> None:
    components = {name: getattr(tiny_pipeline, name) for name in ("unet", "vae", "text_encoder")}
    before = {name: state(module) for name, module in components.items()}
    flags = {name: [p.requires_grad for p in module.parameters()] for name, module in components.items()}
    modes = {name: module.training for name, module in components.items()}
    layout = [(n, type(m).__name__) for n, m in tiny_pipeline.unet.named_modules()]
    result = run(tiny_pipeline, modules="transformer")
    assert result.components["unet"] is not tiny_pipeline.unet
    for name, module in components.items():
        assert getattr(tiny_pipeline, name) is module
        assert same_state(before[name], module.state_dict()), name
        assert [p.requires_grad for p in module.parameters()] == flags[name], name
        assert module.training == modes[name], name
    assert [(n, type(m).__name__) for n, m in tiny_pipeline.unet.named_modules()] == layout
    # the result is a plain U-Net: no adapter is left in it
    assert [(n, type(m).__name__) for n, m in result.components["unet"].named_modules()] == layout
    assert not any(p.requires_grad for p in result.components["unet"].parameters())


def test_same_seed_same_weights_other_seed_other_weights(tiny_pipeline: StableDiffusionPipeline) -> None:
    a, b, c = run(tiny_pipeline, seed=7), run(tiny_pipeline, seed=7), run(tiny_pipeline, seed=8)
    assert a.losses == b.losses and a.info["stop_steps"] == b.info["stop_steps"]
    assert same_state(a.components["unet"].state_dict(), b.components["unet"].state_dict())
    assert same_state(a.info["adapter"].state_dict, b.info["adapter"].state_dict)
    assert not same_state(a.components["unet"].state_dict(), c.components["unet"].state_dict())


def test_checkpoints_hold_the_weights_of_a_shorter_run(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    """At a constant lr (the schedule of a run does not depend on its length) the merged weights kept
    after iteration k are those of a run of k iterations with the same seed, and keeping them changes
    nothing; the last one is the result's own U-Net."""
    kept = run(tiny_pipeline, iterations=3, checkpoint_iterations=(1, 3))
    plain = run(tiny_pipeline, iterations=3)
    assert kept.losses == plain.losses and same_state(state(kept.components["unet"]), state(plain.components["unet"]))
    assert sorted(kept.step_checkpoints) == [1, 3] and not plain.step_checkpoints
    shorter = run(tiny_pipeline, iterations=1)
    assert same_state(state(kept.component_after_step("unet", 1)), state(shorter.components["unet"]))
    assert same_state(state(kept.component_after_step("unet", 3)), state(kept.components["unet"]))
    names = {f"{n}.weight" for n in adapted_layer_names(tiny_pipeline.unet, "xattn")}
    assert set(kept.step_checkpoints[1]) == names  # the adapted layers' merged weights only
    assert 0 < kept.info.checkpoint_seconds[1] < kept.info.checkpoint_seconds[3] <= kept.optimization_seconds
    loaded = ErasureResult.load(kept.save(tmp_path / "spm", base_model="tiny"))
    assert loaded.config.checkpoint_iterations == (1, 3) and list(loaded.info.checkpoint_seconds) == [1, 3]


def test_anchor_prompts(tiny_pipeline: StableDiffusionPipeline) -> None:
    result = run(tiny_pipeline, anchor_prompts=("shirt", "bag"), iterations=3)
    assert result.info["anchor_losses"][0] < 1e-10  # up = 0 before the first step
    assert all(math.isfinite(x) and x > 0 for x in result.info["anchor_losses"][1:])
    with pytest.raises(ValueError, match="anchor_prompts holds the erased concept"):
        run(tiny_pipeline, anchor_prompts=("shirt", "Sneaker"))


def test_non_finite_loss_raises(tiny_pipeline: StableDiffusionPipeline) -> None:
    unet = copy.deepcopy(tiny_pipeline.unet)
    with torch.no_grad():
        unet.conv_out.bias.fill_(float("nan"))
    broken = StableDiffusionPipeline(**(tiny_pipeline.components | {"unet": unet}))
    with pytest.raises(NonFiniteLossError, match="spm") as info:
        run(broken)
    assert (info.value.method, info.value.step, info.value.lr) == ("spm", 1, 1e-2)


# --------------------------------------------------------------------------------------------
# The result: apply, save, load into a vanilla pipeline, the adapter file
# --------------------------------------------------------------------------------------------


def test_saved_result_loads_into_a_vanilla_pipeline(
    tiny_pipeline: StableDiffusionPipeline, saved_pipeline_dir: Path, tmp_path: Path
) -> None:
    result = run(tiny_pipeline)
    assert (result.method, result.concept, sorted(result.components)) == ("spm", CONCEPT, ["unet"])
    assert len(result.losses) == 2 and result.setup_seconds > 0 and result.optimization_seconds > 0
    out = result.save(tmp_path / "spm", base_model="tiny")
    meta = json.loads((out / "erasure.json").read_text())
    assert (meta["method"], meta["steps"], meta["config"]["modules"]) == ("spm", 2, "xattn")
    assert meta["adapter"].startswith("SPM adapters: 28 layers, rank 1")  # a summary, not the tensors
    loaded = ErasureResult.load(out)
    assert same_state(loaded.components["unet"].state_dict(), result.components["unet"].state_dict())

    # A vanilla pipeline: the saved unet folder replaces the base model's unet.
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    vanilla = StableDiffusionPipeline.from_pretrained(saved_pipeline_dir, unet=unet, safety_checker=None)
    vanilla.set_progress_bar_config(disable=True)
    base = StableDiffusionPipeline.from_pretrained(saved_pipeline_dir, safety_checker=None)
    base.set_progress_bar_config(disable=True)
    options = {"num_inference_steps": 2, "height": 16, "width": 16, "output_type": "np"}
    erased = vanilla(CONCEPT, generator=torch.Generator("cpu").manual_seed(0), **options).images
    original = base(CONCEPT, generator=torch.Generator("cpu").manual_seed(0), **options).images
    applied = result.apply(tiny_pipeline)(CONCEPT, generator=torch.Generator("cpu").manual_seed(0), **options).images
    assert erased.shape == (1, 16, 16, 3) and np.isfinite(erased).all()
    np.testing.assert_allclose(erased, applied, atol=1e-5)
    assert not np.array_equal(erased, original)


def test_save_adapter(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    result = run(tiny_pipeline, modules="transformer")
    path = save_adapter(result, tmp_path / "adapters" / "sneaker_last.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
        tensors = {k: f.get_tensor(k) for k in keys}
    assert metadata == {"prompts": CONCEPT, "rank": "1", "alpha": "1.0"}  # what infer_spm.py reads
    names = adapted_layer_names(tiny_pipeline.unet, "transformer")
    assert keys == {f"{adapter_key(n)}.{s}" for n in names for s in ("lora_down.weight", "lora_up.weight", "alpha")}
    conv = next(n for n in names if n.endswith("proj_in"))
    key = adapter_key(conv)
    assert key == "lora_unet_" + conv.replace(".", "_")
    assert tensors[f"{key}.lora_down.weight"].ndim == 4 and tensors[f"{key}.lora_up.weight"].shape[1:] == (1, 1, 1)
    with pytest.raises(ValueError, match="safetensors"):
        save_adapter(result, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="no SPM adapter"):
        save_adapter(ErasureResult(method="spm", concept=CONCEPT, components={}, config=SPMConfig()), tmp_path / "b.safetensors")


# --------------------------------------------------------------------------------------------
# SD v1.4's architecture (reduced width, random weights)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("modules", ["xattn", "transformer"])
def test_sd14_rank_one_edits(modules: str, sd14_tiny: StableDiffusionPipeline) -> None:
    before = state(sd14_tiny.unet)
    result = run(sd14_tiny, modules=modules, max_denoising_steps=2, dynamic_resolution=False)
    assert same_state(before, sd14_tiny.unet.state_dict())
    names = adapted_layer_names(sd14_tiny.unet, modules)  # type: ignore[arg-type]
    # SD v1.4 has 16 transformer blocks (6 down, 1 mid, 9 up); 4 cross-attention projections each,
    # and 12 linear/1x1-conv layers in all (proj_in, proj_out, 4 + 4 attention, 2 feed-forward).
    assert len(names) == 16 * (4 if modules == "xattn" else 12)
    check_rank_one_edit(sd14_tiny.unet, result)
    assert result.info["latent_sizes"] == [(16, 16), (16, 16)]


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("concept", "pattern"), [("", "concept is empty"), ("word " * 40, "too long")])
def test_bad_concepts(concept: str, pattern: str, tiny_pipeline: StableDiffusionPipeline) -> None:
    with pytest.raises(ValueError, match=pattern):
        run(tiny_pipeline, concept=concept)


def test_images_are_ignored(tiny_pipeline: StableDiffusionPipeline) -> None:
    a = erase(tiny_pipeline, CONCEPT, ["not", "an", "image"], SPMConfig(**FAST), progress_bar=False)  # type: ignore[arg-type]
    b = erase(tiny_pipeline, CONCEPT, None, SPMConfig(**FAST), progress_bar=False)  # type: ignore[arg-type]
    assert a.losses == b.losses

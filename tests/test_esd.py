"""ESD (Gandikota et al., ICCV 2023): fine-tune a copy of the U-Net toward negatively guided noise.

All runs use conftest's ``tiny_pipeline`` fixture (random weights, 16 px, 8x8 latents) and a few
iterations. Nothing is imported from conftest, so the module works whether or not tests/ is a package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

from erasure_lib.methods.base import ErasureResult, NonFiniteLossError
from erasure_lib.methods.esd import (
    TRAIN_METHODS,
    ESDConfig,
    check_concept,
    ddim_sampler,
    erase,
    esd_target,
    trainable_parameter_names,
)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

CONCEPT = "sneaker"
FAST = {"iterations": 2, "ddim_steps": 4, "lr": 1e-3}


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def run(pipeline: StableDiffusionPipeline, concept: str = CONCEPT, **options: object) -> ErasureResult:
    config = ESDConfig(**({"train_method": "xattn"} | FAST | options))  # type: ignore[arg-type]
    return erase(pipeline, concept, None, config, progress_bar=False)


def changed_names(before: dict[str, torch.Tensor], after: torch.nn.Module) -> set[str]:
    now = after.state_dict()
    assert now.keys() == before.keys()
    return {k for k in before if not torch.equal(before[k], now[k])}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def expected_names(unet: UNet2DConditionModel, train_method: str) -> set[str]:
    """What each method trains, from the reference's rule restated on diffusers' names (CompVis
    ``time_embed`` -> ``time_embedding``, ``out.`` -> ``conv_norm_out``/``conv_out``)."""
    names = {n for n, _ in unet.named_parameters()}
    if train_method == "full":
        return names
    xattn = {n for n in names if ".attn2." in n}
    if train_method == "xattn":
        return xattn
    excluded = {n for n in names if n.split(".")[0] in ("time_embedding", "conv_norm_out", "conv_out")}
    return names - xattn - excluded


def encode(pipeline: StableDiffusionPipeline, prompt: str) -> torch.Tensor:
    tok = pipeline.tokenizer
    ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipeline.text_encoder(ids)[0]


# --------------------------------------------------------------------------------------------
# Configuration and the target
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_reference_codes() -> None:
    c = ESDConfig(train_method="xattn")
    assert (c.iterations, c.lr, c.negative_guidance, c.ddim_steps, c.start_guidance) == (1000, 1e-5, 1.0, 50, 3.0)
    assert (c.seed, c.template) == (0, "{}")
    assert TRAIN_METHODS == ("xattn", "noxattn", "full")


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"train_method": "esd-x"}, "train_method"),
        ({"train_method": "selfattn"}, "train_method"),
        ({"train_method": "XATTN"}, "train_method"),
        ({"iterations": 0}, "iterations"),
        ({"ddim_steps": 0}, "ddim_steps"),
        ({"lr": 0.0}, "lr"),
        ({"negative_guidance": -1.0}, "negative_guidance"),
        ({"start_guidance": -0.5}, "start_guidance"),
        ({"template": "a photo of a sneaker"}, "template"),
    ],
)
def test_config_rejects_bad_options(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ESDConfig(**({"train_method": "xattn"} | options))  # type: ignore[arg-type]


def test_esd_target_is_eq3() -> None:
    g = torch.Generator("cpu").manual_seed(0)
    e_0, e_p = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    for eta in (0.0, 1.0, 2.5):
        direct = e_0 - eta * e_p + eta * e_0
        torch.testing.assert_close(esd_target(e_0, e_p, eta), direct)
    torch.testing.assert_close(esd_target(e_0, e_p, 0.0), e_0)
    torch.testing.assert_close(esd_target(e_0, e_p, 1.0), 2 * e_0 - e_p)


# --------------------------------------------------------------------------------------------
# Which parameters train
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train_method", TRAIN_METHODS)
def test_trainable_parameter_names(train_method: str, tiny_pipeline: StableDiffusionPipeline) -> None:
    unet = tiny_pipeline.unet
    assert set(trainable_parameter_names(unet, train_method)) == expected_names(unet, train_method)  # type: ignore[arg-type]


def test_xattn_and_noxattn_split_the_unet(tiny_pipeline: StableDiffusionPipeline) -> None:
    unet = tiny_pipeline.unet
    all_names = {n for n, _ in unet.named_parameters()}
    x = set(trainable_parameter_names(unet, "xattn"))
    u = set(trainable_parameter_names(unet, "noxattn"))
    assert x and u and not x & u
    assert all("attn2" in n for n in x) and not any("attn2" in n for n in u)
    # The rest is exactly the time embedding and the output layers (CompVis: time_embed, out.).
    assert {n.split(".")[0] for n in all_names - x - u} == {"time_embedding", "conv_norm_out", "conv_out"}
    # The resnets' time projections, the input conv and self-attention do train in ESD-u.
    assert any("time_emb_proj" in n for n in u) and "conv_in.weight" in u and any(".attn1." in n for n in u)


def test_trainable_rejects_unknown_method(tiny_pipeline: StableDiffusionPipeline) -> None:
    with pytest.raises(ValueError, match="train_method"):
        trainable_parameter_names(tiny_pipeline.unet, "esd-u")  # type: ignore[arg-type]


@pytest.mark.parametrize("train_method", ["xattn", "noxattn"])
def test_erase_changes_exactly_the_trainable_parameters(
    train_method: str, tiny_pipeline: StableDiffusionPipeline
) -> None:
    before = state(tiny_pipeline.unet)
    result = run(tiny_pipeline, train_method=train_method)
    assert changed_names(before, result.components["unet"]) == expected_names(tiny_pipeline.unet, train_method)


# --------------------------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------------------------


def test_first_loss_written_out(tiny_pipeline: StableDiffusionPipeline) -> None:
    """One iteration, recomputed with diffusers directly: t_enc then the start noise from one CPU
    generator, t_enc guided DDIM steps, z_t at timesteps[t_enc], MSE to e_0 - eta (e_p - e_0)."""
    config = ESDConfig(
        train_method="xattn", iterations=1, ddim_steps=5, negative_guidance=1.5, start_guidance=2.0, seed=3
    )
    result = erase(tiny_pipeline, CONCEPT, None, config, progress_bar=False)

    unet = tiny_pipeline.unet
    g = torch.Generator("cpu").manual_seed(3)
    t_enc = int(torch.randint(5, (1,), generator=g))
    z = torch.randn((1, 4, 8, 8), generator=g)
    scheduler = DDIMScheduler.from_config(tiny_pipeline.scheduler.config, clip_sample=False)  # the reference does not clip x_0
    scheduler.set_timesteps(5)
    emb_0, emb_p = encode(tiny_pipeline, ""), encode(tiny_pipeline, CONCEPT)
    with torch.no_grad():
        for t in scheduler.timesteps[:t_enc]:
            e_u, e_c = unet(z, t, emb_0).sample, unet(z, t, emb_p).sample
            z = scheduler.step(e_u + 2.0 * (e_c - e_u), t, z).prev_sample
        t = scheduler.timesteps[t_enc]
        e_0, e_p = unet(z, t, emb_0).sample, unet(z, t, emb_p).sample
        loss = F.mse_loss(e_p, e_0 - 1.5 * (e_p - e_0))  # before the step, theta = theta*, so e_n = e_p
    assert result.info["stop_steps"] == [t_enc]
    assert result.losses[0] == pytest.approx(loss.item(), rel=1e-4)


def test_ddim_sampling_of_z_t_does_not_clip_x0(tiny_pipeline: StableDiffusionPipeline) -> None:
    """DDIM (eta 0) as the reference's sampler: x_0 = (z - sqrt(1 - a) eps) / sqrt(a), then
    z_prev = sqrt(a_prev) x_0 + sqrt(1 - a_prev) eps, with x_0 left as it is even far beyond [-1, 1]
    (diffusers' DDIM default would clip it: the built-in model's scheduler config does not say)."""
    scheduler = ddim_sampler(tiny_pipeline)
    scheduler.set_timesteps(5)
    g = torch.Generator("cpu").manual_seed(0)
    z, eps = 4 * torch.randn((1, 4, 8, 8), generator=g), torch.randn((1, 4, 8, 8), generator=g)
    t, t_prev = scheduler.timesteps[1], scheduler.timesteps[2]
    a, a_prev = scheduler.alphas_cumprod[t], scheduler.alphas_cumprod[t_prev]
    x0 = (z - (1 - a).sqrt() * eps) / a.sqrt()
    assert x0.abs().max() > 1  # the clip would change this step
    expected = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    assert torch.allclose(scheduler.step(eps, t, z).prev_sample, expected, atol=1e-5)


def test_training_lowers_the_esd_loss(tiny_pipeline: StableDiffusionPipeline) -> None:
    """On held-out noise at the first DDIM timestep, the erased U-Net is closer to the ESD target."""
    result = run(tiny_pipeline, iterations=15, ddim_steps=1)  # t_enc = 0: z_t is pure noise
    z = torch.randn((3, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(123))
    scheduler = DDIMScheduler.from_config(tiny_pipeline.scheduler.config)
    scheduler.set_timesteps(1)
    t = scheduler.timesteps[0]
    emb_0, emb_p = encode(tiny_pipeline, "").expand(3, -1, -1), encode(tiny_pipeline, CONCEPT).expand(3, -1, -1)
    with torch.no_grad():
        e_0, e_p = tiny_pipeline.unet(z, t, emb_0).sample, tiny_pipeline.unet(z, t, emb_p).sample
        target = esd_target(e_0, e_p, 1.0)
        erased = result.components["unet"](z, t, emb_p).sample
    assert F.mse_loss(erased, target) < 0.5 * F.mse_loss(e_p, target)


def test_pipeline_is_not_modified(tiny_pipeline: StableDiffusionPipeline) -> None:
    components = {name: getattr(tiny_pipeline, name) for name in ("unet", "vae", "text_encoder")}
    before = {name: state(module) for name, module in components.items()}
    flags = {name: [p.requires_grad for p in module.parameters()] for name, module in components.items()}
    modes = {name: module.training for name, module in components.items()}
    result = run(tiny_pipeline, train_method="full")
    assert result.components["unet"] is not tiny_pipeline.unet
    for name, module in components.items():
        assert getattr(tiny_pipeline, name) is module
        assert same_state(before[name], module.state_dict()), name
        assert [p.requires_grad for p in module.parameters()] == flags[name], name
        assert module.training == modes[name], name


def test_same_seed_same_weights_other_seed_other_weights(tiny_pipeline: StableDiffusionPipeline) -> None:
    a = run(tiny_pipeline, seed=7)
    b = run(tiny_pipeline, seed=7)
    c = run(tiny_pipeline, seed=8)
    assert a.losses == b.losses and same_state(a.components["unet"].state_dict(), b.components["unet"].state_dict())
    assert not same_state(a.components["unet"].state_dict(), c.components["unet"].state_dict())


def test_result_fields_and_apply(tiny_pipeline: StableDiffusionPipeline) -> None:
    result = run(tiny_pipeline, iterations=3)
    assert (result.method, result.concept, sorted(result.components)) == ("esd", CONCEPT, ["unet"])
    assert len(result.losses) == 3 and all(loss >= 0 for loss in result.losses)
    assert len(result.info["stop_steps"]) == 3 and all(0 <= s < 4 for s in result.info["stop_steps"])
    assert result.info["trainable_parameters"] == sum(
        p.numel() for n, p in tiny_pipeline.unet.named_parameters() if "attn2" in n
    )
    assert result.setup_seconds > 0 and result.optimization_seconds > 0 and not result.checkpoints
    assert not any(p.requires_grad for p in result.components["unet"].parameters())
    applied = result.apply(tiny_pipeline)
    assert applied.unet is result.components["unet"] and applied.text_encoder is tiny_pipeline.text_encoder


def test_save_and_load_back(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    result = run(tiny_pipeline)
    out = result.save(tmp_path / "esd", base_model="tiny")
    loaded = UNet2DConditionModel.from_pretrained(out / "unet")
    assert same_state(loaded.state_dict(), result.components["unet"].state_dict())
    meta = json.loads((out / "erasure.json").read_text())
    assert (meta["method"], meta["config"]["train_method"], meta["steps"]) == ("esd", "xattn", 2)


def test_checkpoints_hold_the_weights_of_a_shorter_run(tiny_pipeline: StableDiffusionPipeline) -> None:
    """The weights kept after iteration k are those of a run of k iterations with the same seed (the
    random draws of the first k iterations are the same), and keeping them changes nothing."""
    kept = run(tiny_pipeline, iterations=4, checkpoint_iterations=(1, 3))
    plain = run(tiny_pipeline, iterations=4)
    assert kept.losses == plain.losses and same_state(state(kept.components["unet"]), state(plain.components["unet"]))
    assert sorted(kept.step_checkpoints) == [1, 3] and not plain.step_checkpoints
    for k in (1, 3):
        shorter = run(tiny_pipeline, iterations=k)
        assert same_state(state(kept.component_after_step("unet", k)), state(shorter.components["unet"]))
        assert kept.info.checkpoint_seconds[k] > 0
    assert kept.info.checkpoint_seconds[1] < kept.info.checkpoint_seconds[3] <= kept.optimization_seconds
    # a checkpoint holds only the trained (cross-attention) weights; apply(step=) swaps the U-Net in
    assert all("attn2" in name for name in kept.step_checkpoints[1])
    at_one = kept.apply(tiny_pipeline, step=1)
    assert at_one.unet is not tiny_pipeline.unet and at_one.text_encoder is tiny_pipeline.text_encoder


def test_checkpoint_seconds_survive_save_and_load(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    result = run(tiny_pipeline, iterations=2, checkpoint_iterations=(1,))
    loaded = ErasureResult.load(result.save(tmp_path / "esd", base_model="tiny"))
    assert loaded.config == result.config and loaded.config.checkpoint_iterations == (1,)
    assert loaded.info == result.info and list(loaded.info.checkpoint_seconds) == [1]


@pytest.mark.parametrize("checkpoints", [(0,), (3,), (1, 5)])
def test_checkpoints_must_lie_within_the_run(checkpoints: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="outside 1..2"):
        ESDConfig(train_method="xattn", iterations=2, checkpoint_iterations=checkpoints)
    with pytest.raises(ValueError, match="not a single value"):
        ESDConfig(train_method="xattn", iterations=2, checkpoint_iterations=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concept", "pattern"), [("", "concept is empty"), ("   ", "concept is empty"), ("word " * 40, "too long")]
)
def test_bad_concepts(concept: str, pattern: str, tiny_pipeline: StableDiffusionPipeline) -> None:
    before = state(tiny_pipeline.unet)
    with pytest.raises(ValueError, match=pattern):
        run(tiny_pipeline, concept=concept)
    assert same_state(before, tiny_pipeline.unet.state_dict())


def test_concept_length_limit_is_exact(tiny_pipeline: StableDiffusionPipeline) -> None:
    tok = tiny_pipeline.tokenizer
    limit = tok.model_max_length
    k = next(k for k in range(1, 64) if len(tok(" ".join(["word"] * k)).input_ids) > limit)
    check_concept(tiny_pipeline, " ".join(["word"] * (k - 1)))  # exactly fits
    with pytest.raises(ValueError, match=f"allows {limit}"):
        check_concept(tiny_pipeline, " ".join(["word"] * k))


def test_one_concept_check_and_one_tokenizer_call_for_every_method(tiny_pipeline: StableDiffusionPipeline) -> None:
    from erasure_lib.methods import base, fewshot, uce
    from erasure_lib.methods.esd import encode_prompt

    assert check_concept is base.check_concept and uce.check_concept is base.check_concept
    with pytest.raises(ValueError, match="concept is empty"):
        fewshot.check_concept(tiny_pipeline, " ", "object")
    tok = tiny_pipeline.tokenizer
    prompts = ["a photo of a sneaker", "", "word " * 40]
    ids = base.tokenize(tok, prompts, tiny_pipeline.device)
    expected = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    assert ids.shape == (3, tok.model_max_length) and torch.equal(ids, expected)
    with pytest.raises(TypeError, match="sequence of strings"):
        base.tokenize(tok, "a photo of a sneaker", tiny_pipeline.device)
    assert torch.equal(encode_prompt(tiny_pipeline, prompts[0]), tiny_pipeline.text_encoder(ids[:1])[0])


def test_a_diverging_run_stops_with_non_finite_loss_error(tiny_pipeline: StableDiffusionPipeline) -> None:
    """lr 1e12 blows the weights up after the first update: the second loss is not finite."""
    before = state(tiny_pipeline.unet)
    with pytest.raises(NonFiniteLossError, match=r"step 2 \(lr 1e\+12\)") as err:
        run(tiny_pipeline, iterations=4, lr=1e12)
    assert (err.value.method, err.value.step, err.value.lr, err.value.what) == ("esd", 2, 1e12, "loss")
    assert same_state(before, tiny_pipeline.unet.state_dict())


def test_weights_that_stop_being_finite_on_the_last_step_are_caught(
    tiny_pipeline: StableDiffusionPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last update can leave non-finite weights behind a finite loss (no later loss would show it).
    An optimizer that writes a NaN on its last step stands in for an overflowing gradient."""

    class PoisonedAdam(torch.optim.Adam):
        def step(self, closure=None):  # type: ignore[no-untyped-def]
            out = super().step(closure)
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = float("nan")
            return out

    monkeypatch.setattr(torch.optim, "Adam", PoisonedAdam)
    with pytest.raises(NonFiniteLossError, match="trained weights") as err:
        run(tiny_pipeline, iterations=1)
    assert (err.value.step, err.value.what) == (1, "trained weights")


def test_config_is_required(tiny_pipeline: StableDiffusionPipeline) -> None:
    with pytest.raises(ValueError, match="train_method"):
        erase(tiny_pipeline, CONCEPT, None, None, progress_bar=False)


def test_erase_or_load_reuses_a_saved_result_only_for_the_same_config(tmp_path: Path, tiny_pipeline: StableDiffusionPipeline) -> None:
    """A second call with the same method, concept, config and base model reads the saved U-Net back;
    a changed config trains again."""
    from erasure_lib.methods.base import erase_or_load

    pipeline = tiny_pipeline
    config = ESDConfig(train_method="xattn", iterations=2, ddim_steps=2, seed=0)
    calls: list[ESDConfig] = []

    def counting_erase(*args: object, **kwargs: object) -> ErasureResult:
        calls.append(args[3])  # type: ignore[arg-type]
        return erase(*args, **kwargs)  # type: ignore[arg-type]

    counting_erase.__module__ = erase.__module__
    first = erase_or_load(counting_erase, pipeline, "sneaker", None, config, tmp_path / "e", "tiny")
    again = erase_or_load(counting_erase, pipeline, "sneaker", None, config, tmp_path / "e", "tiny")
    assert len(calls) == 1
    assert isinstance(again, ErasureResult) and again.method == "esd"
    for (name, a), b in zip(first.components["unet"].state_dict().items(), again.components["unet"].state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    erase_or_load(counting_erase, pipeline, "sneaker", None, ESDConfig(train_method="xattn", iterations=3, ddim_steps=2, seed=0),
                  tmp_path / "e", "tiny")
    assert len(calls) == 2
    # other images: trained again
    other = tmp_path / "images"
    other.mkdir()
    (other / "a.txt").write_bytes(b"x")
    erase_or_load(counting_erase, pipeline, "sneaker", other, ESDConfig(train_method="xattn", iterations=3, ddim_steps=2, seed=0),
                  tmp_path / "e", "tiny")
    assert len(calls) == 3
    # a fix of the method (its revision bumped): trained again; a key written before revisions existed counts as revision 1
    config = ESDConfig(train_method="xattn", iterations=3, ddim_steps=2, seed=0)
    erase_or_load(counting_erase, pipeline, "sneaker", other, config, tmp_path / "e", "tiny", revision=2)
    assert len(calls) == 4
    key_file = tmp_path / "e" / "cache_key.json"
    key = json.loads(key_file.read_text())
    assert key.pop("revision") == 2
    key_file.write_text(json.dumps(key))  # as the code before revisions wrote it
    erase_or_load(counting_erase, pipeline, "sneaker", other, config, tmp_path / "e", "tiny", revision=1)
    assert len(calls) == 4


def test_erase_or_load_keys_the_base_model_by_its_weights(tmp_path: Path, tiny_pipeline: StableDiffusionPipeline) -> None:
    """A re-trained base model under the same name (``make reproduce``) is erased anew, not given the
    erasure saved for the old weights; a key written before the weights were part of it is never read back."""
    import copy

    from erasure_lib.methods.base import erase_or_load

    config = ESDConfig(train_method="xattn", iterations=2, ddim_steps=2, seed=0)
    calls: list[object] = []

    def counting_erase(*args: object, **kwargs: object) -> ErasureResult:
        calls.append(args[0])
        return erase(*args, **kwargs)  # type: ignore[arg-type]

    counting_erase.__module__ = erase.__module__
    retrained = StableDiffusionPipeline(**{**tiny_pipeline.components, "text_encoder": copy.deepcopy(tiny_pipeline.text_encoder)})
    with torch.no_grad():
        next(retrained.text_encoder.parameters()).view(-1)[0] += 1e-3
    folder = tmp_path / "e"
    erase_or_load(counting_erase, tiny_pipeline, "sneaker", None, config, folder, "tiny")
    erase_or_load(counting_erase, tiny_pipeline, "sneaker", None, config, folder, "tiny")
    assert calls == [tiny_pipeline]
    erase_or_load(counting_erase, retrained, "sneaker", None, config, folder, "tiny")
    assert calls == [tiny_pipeline, retrained]
    key_file = folder / "cache_key.json"
    key = json.loads(key_file.read_text())
    key.pop("base_weights")
    key_file.write_text(json.dumps(key))  # as the code before the digest wrote it
    erase_or_load(counting_erase, retrained, "sneaker", None, config, folder, "tiny")
    assert calls == [tiny_pipeline, retrained, retrained]
    # a digest passed in (once per base model, as erase_with_methods does) keys the same as one computed
    from erasure_lib.methods.base import model_digest

    erase_or_load(counting_erase, retrained, "sneaker", None, config, folder, "tiny", base_weights=model_digest(retrained))
    assert calls == [tiny_pipeline, retrained, retrained]
    erase_or_load(counting_erase, retrained, "sneaker", None, config, folder, "tiny", base_weights=model_digest(tiny_pipeline))
    assert calls == [tiny_pipeline, retrained, retrained, retrained]


def test_every_method_has_a_revision() -> None:
    """The erasure cache keys on each method's revision: a method without one could not be cached."""
    from typing import get_args

    from erasure_lib.methods import REVISIONS, MethodName

    assert set(REVISIONS) == set(get_args(MethodName)) and all(isinstance(r, int) and r >= 1 for r in REVISIONS.values())

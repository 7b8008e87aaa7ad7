"""UCE (Gandikota et al., WACV 2024): a closed-form edit of the cross-attention key and value projections.

All runs use conftest's ``tiny_pipeline`` fixture (random weights, a 2-layer text encoder of width 32,
32 tokens). Nothing is imported from conftest, so the module works whether or not tests/ is a package.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.methods.base import ErasureResult
from erasure_lib.methods.uce import (
    UCEConfig,
    aligned_tokens,
    closed_form_edit,
    edit_inputs,
    edited_projection_names,
    erase,
    token_embeddings,
)

CONCEPT = "sneaker"

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def run(pipeline: StableDiffusionPipeline, concept: str = CONCEPT, **options: object) -> ErasureResult:
    return erase(pipeline, concept, None, UCEConfig(**options), progress_bar=False)  # type: ignore[arg-type]


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def changed_names(before: dict[str, torch.Tensor], after: torch.nn.Module) -> set[str]:
    now = after.state_dict()
    assert now.keys() == before.keys()
    return {k for k in before if not torch.equal(before[k], now[k])}


def encoder_outputs(pipeline: StableDiffusionPipeline, prompt: str) -> torch.Tensor:
    tok = pipeline.tokenizer
    ids = tok([prompt], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipeline.text_encoder(ids)[0][0]


def problem(n: int, m: int, d_in: int = 6, d_out: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator("cpu").manual_seed(seed)
    shapes = [(d_out, d_in), (n, d_in), (n, d_out), (m, d_in)]
    return tuple(torch.randn(s, generator=g, dtype=torch.float64) for s in shapes)


def objective(
    W: torch.Tensor,
    W_old: torch.Tensor,
    C_e: torch.Tensor,
    V: torch.Tensor,
    C_p: torch.Tensor,
    s_e: float,
    s_p: float,
    lamb: float,
) -> torch.Tensor:
    """The objective of ``closed_form_edit``'s docstring, written out."""
    return (
        s_e * ((C_e @ W.T - V) ** 2).sum()
        + s_p * ((C_p @ W.T - C_p @ W_old.T) ** 2).sum()
        + lamb * ((W - W_old) ** 2).sum()
    )


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_defaults_are_the_reference_codes() -> None:
    c = UCEConfig()
    assert (c.guide, c.preserve, c.erase_scale, c.preserve_scale, c.lamb, c.with_to_k) == ("", (), 1.0, None, 0.5, True)
    assert c.effective_preserve_scale == 1.0 and UCEConfig(erase_scale=3.0).effective_preserve_scale == 3.0
    assert UCEConfig(erase_scale=3.0, preserve_scale=0.1).effective_preserve_scale == 0.1
    assert c.templates == ("{}", "a photo of a {}")


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"lamb": 0.0}, "lamb"),
        ({"lamb": -1.0}, "lamb"),
        ({"erase_scale": -1.0}, "erase_scale"),
        ({"preserve_scale": -0.1}, "preserve_scale"),
        ({"preserve": "boot"}, "preserve"),
        ({"preserve": ("boot", " ")}, "preserve"),
        ({"templates": ()}, "templates"),
        ({"templates": ("a photo",)}, "template"),
    ],
)
def test_config_rejects_bad_options(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        UCEConfig(**options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The closed form
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "m", "s_e", "s_p", "lamb"), [(3, 2, 1.0, 1.0, 0.5), (8, 0, 10.0, 0.0, 0.1), (2, 9, 0.7, 3.0, 1e-3)]
)
def test_closed_form_solves_its_least_squares(n: int, m: int, s_e: float, s_p: float, lamb: float) -> None:
    W_old, C_e, V, C_p = problem(n, m)
    W_new = closed_form_edit(W_old, C_e, V, C_p if m else None, s_e, s_p, lamb)

    # The gradient of the objective vanishes at W_new ...
    W = W_new.clone().requires_grad_(True)
    objective(W, W_old, C_e, V, C_p, s_e, s_p, lamb).backward()
    assert W.grad.abs().max() < 1e-9 * (1 + W_old.abs().max())

    # ... and W_new is the least-squares solution of the stacked system  [sqrt(s) rows] W^T = [targets].
    A = torch.cat([s_e**0.5 * C_e, s_p**0.5 * C_p, lamb**0.5 * torch.eye(W_old.shape[1], dtype=W_old.dtype)])
    B = torch.cat([s_e**0.5 * V, s_p**0.5 * C_p @ W_old.T, lamb**0.5 * W_old.T])
    torch.testing.assert_close(W_new, torch.linalg.lstsq(A, B).solution.T, rtol=1e-8, atol=1e-10)


def test_closed_form_limits() -> None:
    W_old, C_e, V, C_p = problem(3, 2)
    # Nothing to erase or preserve: W stays.
    torch.testing.assert_close(closed_form_edit(W_old, C_e, V, C_p, 0.0, 0.0, 0.5), W_old)
    # A consistent edit (targets W_old c) changes nothing either.
    torch.testing.assert_close(closed_form_edit(W_old, C_e, C_e @ W_old.T, C_p, 1.0, 1.0, 0.5), W_old)
    # Few tokens, a huge erase scale: the edited map sends every c_i to its target.
    W_new = closed_form_edit(W_old, C_e, V, None, 1e6, 1.0, 1e-3)
    torch.testing.assert_close(C_e @ W_new.T, V, rtol=1e-5, atol=1e-5)


def test_closed_form_keeps_dtype_and_checks_shapes() -> None:
    W_old, C_e, V, C_p = (t.float() for t in problem(3, 2))
    assert closed_form_edit(W_old, C_e, V, C_p, 1.0, 1.0, 0.5).dtype == torch.float32
    with pytest.raises(ValueError, match="V_target"):
        closed_form_edit(W_old, C_e, V[:2], C_p, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="C_erase"):
        closed_form_edit(W_old, C_e[:, :3], V, C_p, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="C_preserve"):
        closed_form_edit(W_old, C_e, V, C_p[:, :3], 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="non-negative"):
        closed_form_edit(W_old, C_e, V, C_p, 1.0, -1.0, 0.5)


# --------------------------------------------------------------------------------------------
# Which tokens
# --------------------------------------------------------------------------------------------


def test_tokens_are_the_last_word_and_what_follows(tiny_pipeline: StableDiffusionPipeline) -> None:
    L = tiny_pipeline.tokenizer.model_max_length
    emb, last = token_embeddings(tiny_pipeline, "a photo of a sneaker")  # <start> a photo of a sneaker <end> ...
    assert last == 5
    torch.testing.assert_close(emb, encoder_outputs(tiny_pipeline, "a photo of a sneaker"))
    assert token_embeddings(tiny_pipeline, "")[1] == 0  # the start token
    # Concept "sneaker" (last word at 1) against the empty guide (0): positions 1.. pair with 0..
    c, g = aligned_tokens(tiny_pipeline, "sneaker", "")
    torch.testing.assert_close(c, encoder_outputs(tiny_pipeline, "sneaker")[1:])
    torch.testing.assert_close(g, encoder_outputs(tiny_pipeline, "")[: L - 1])
    # A guide longer than the concept: both runs are cut to the shorter length.
    c, g = aligned_tokens(tiny_pipeline, "sneaker", "a running shoe")
    torch.testing.assert_close(c, encoder_outputs(tiny_pipeline, "sneaker")[1 : L - 2])
    torch.testing.assert_close(g, encoder_outputs(tiny_pipeline, "a running shoe")[3:])


def test_edit_inputs_stack_every_template(tiny_pipeline: StableDiffusionPipeline) -> None:
    L = tiny_pipeline.tokenizer.model_max_length
    config = UCEConfig(preserve=("boot",), templates=("{}", "a photo of a {}"))
    C_e, C_g, C_p = edit_inputs(tiny_pipeline, CONCEPT, config)
    assert len(C_e) == len(C_g) == (L - 1) + (L - 5)
    assert len(C_p) == (L - 1) + (L - 5)  # "boot" is one token too
    torch.testing.assert_close(C_e[L - 1 :], encoder_outputs(tiny_pipeline, "a photo of a sneaker")[5:])
    torch.testing.assert_close(C_p[: L - 1], encoder_outputs(tiny_pipeline, "boot")[1:])


# --------------------------------------------------------------------------------------------
# Erasing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_to_k", [True, False])
def test_erase_changes_only_cross_attention_keys_and_values(
    with_to_k: bool, tiny_pipeline: StableDiffusionPipeline
) -> None:
    before = state(tiny_pipeline.unet)
    result = run(tiny_pipeline, with_to_k=with_to_k)
    expected = {n for n in before if ".attn2.to_v." in n or (with_to_k and ".attn2.to_k." in n)}
    assert all(n.endswith(".weight") for n in expected) and len(expected) == (14 if with_to_k else 7)
    assert changed_names(before, result.components["unet"]) == expected
    assert sorted(result.info["edited_projections"]) == sorted(n.removesuffix(".weight") for n in expected)
    assert edited_projection_names(tiny_pipeline.unet, with_to_k) == result.info["edited_projections"]


def test_each_projection_is_the_closed_form(tiny_pipeline: StableDiffusionPipeline) -> None:
    config = UCEConfig(guide="boot", preserve=("sandal", "shirt"), erase_scale=2.0, lamb=0.3)
    result = erase(tiny_pipeline, CONCEPT, None, config, progress_bar=False)
    C_e, C_g, C_p = edit_inputs(tiny_pipeline, CONCEPT, config)
    old, new = dict(tiny_pipeline.unet.named_modules()), dict(result.components["unet"].named_modules())
    for name in result.info["edited_projections"]:
        W_old = old[name].weight.detach()
        expected = closed_form_edit(W_old, C_e, C_g @ W_old.T, C_p, 2.0, 2.0, 0.3)  # preserve_scale None -> 2.0
        torch.testing.assert_close(new[name].weight, expected)


def test_erased_tokens_map_to_the_guide(tiny_pipeline: StableDiffusionPipeline) -> None:
    """No preservation, a large erase scale and a small lamb: W_new c_i ~ W_old c^guide_i."""
    config = UCEConfig(erase_scale=100.0, lamb=1e-3, templates=("{}",))
    result = erase(tiny_pipeline, CONCEPT, None, config, progress_bar=False)
    C_e, C_g, _ = edit_inputs(tiny_pipeline, CONCEPT, config)
    old, new = dict(tiny_pipeline.unet.named_modules()), dict(result.components["unet"].named_modules())
    for name in result.info["edited_projections"]:
        W_old, W_new = old[name].weight.detach(), new[name].weight.detach()
        target = C_g @ W_old.T
        before, after = (C_e @ W_old.T - target).norm(), (C_e @ W_new.T - target).norm()
        assert after < 0.1 * before, name
        # The concept's own word token (the most distinctive row) goes nearly exactly to the guide's.
        assert (C_e[0] @ W_new.T - target[0]).norm() < 0.05 * (C_e[0] @ W_old.T - target[0]).norm(), name


def test_preserved_concepts_keep_their_outputs(tiny_pipeline: StableDiffusionPipeline) -> None:
    plain = run(tiny_pipeline, templates=("{}",))
    kept = run(tiny_pipeline, templates=("{}",), preserve=("boot",), preserve_scale=100.0)
    C_p = edit_inputs(tiny_pipeline, CONCEPT, UCEConfig(preserve=("boot",), templates=("{}",)))[2]
    old = dict(tiny_pipeline.unet.named_modules())
    drift = {}
    for label, result in (("plain", plain), ("kept", kept)):
        new = dict(result.components["unet"].named_modules())
        drift[label] = sum(
            float((C_p @ (new[n].weight - old[n].weight).T).norm()) for n in result.info["edited_projections"]
        )
    assert drift["kept"] < 0.2 * drift["plain"]


def test_pipeline_is_not_modified_and_result(tiny_pipeline: StableDiffusionPipeline) -> None:
    components = {name: getattr(tiny_pipeline, name) for name in ("unet", "vae", "text_encoder")}
    before = {name: state(module) for name, module in components.items()}
    flags = {name: [p.requires_grad for p in module.parameters()] for name, module in components.items()}
    result = run(tiny_pipeline, preserve=("boot",))
    for name, module in components.items():
        assert getattr(tiny_pipeline, name) is module
        assert same_state(before[name], module.state_dict()), name
        assert [p.requires_grad for p in module.parameters()] == flags[name], name
    assert (result.method, result.concept, sorted(result.components), result.losses) == ("uce", CONCEPT, ["unet"], [])
    assert result.components["unet"] is not tiny_pipeline.unet
    assert result.setup_seconds > 0 and result.optimization_seconds > 0
    assert result.metadata("tiny")["config"]["preserve"] == ("boot",)
    # Deterministic: a second run gives bit-identical weights.
    again = run(tiny_pipeline, preserve=("boot",))
    assert same_state(result.components["unet"].state_dict(), again.components["unet"].state_dict())


def test_the_longest_template_is_checked(tiny_pipeline: StableDiffusionPipeline) -> None:
    """The shared check (erasure_lib.methods.base) fills every template and names the one that does not fit."""
    from erasure_lib.methods.base import check_concept

    tok = tiny_pipeline.tokenizer
    k = next(k for k in range(1, 64) if len(tok(" ".join(["word"] * k)).input_ids) > tok.model_max_length)
    concept = " ".join(["word"] * (k - 1))  # fits bare, not in a longer template
    check_concept(tiny_pipeline, concept, "{}")
    with pytest.raises(ValueError, match=f"the prompt 'a photo of a {concept}' takes"):
        check_concept(tiny_pipeline, concept, ("{}", "a photo of a {}"))
    with pytest.raises(ValueError, match="too long"):
        run(tiny_pipeline, concept)  # UCEConfig's templates include "a photo of a {}"
    with pytest.raises(ValueError, match="no templates"):
        check_concept(tiny_pipeline, CONCEPT, ())


@pytest.mark.parametrize(
    ("concept", "options", "pattern"),
    [
        ("", {}, "concept is empty"),
        ("  ", {}, "concept is empty"),
        ("word " * 40, {}, "too long"),
        (CONCEPT, {"preserve": ("Sneaker",)}, "both erased and preserved"),
        (CONCEPT, {"preserve": ("word " * 40,)}, "too long"),
        (CONCEPT, {"guide": "word " * 40}, "allows"),
    ],
)
def test_bad_inputs(
    concept: str, options: dict[str, object], pattern: str, tiny_pipeline: StableDiffusionPipeline
) -> None:
    before = state(tiny_pipeline.unet)
    with pytest.raises(ValueError, match=pattern):
        run(tiny_pipeline, concept, **options)
    assert same_state(before, tiny_pipeline.unet.state_dict())

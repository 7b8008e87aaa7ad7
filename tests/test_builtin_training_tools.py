"""diffusers' schedule and EMA against the hand-written ones the shipped models were trained with,
the evaluator's real-image accuracy after the move, and ``tools/py2nb.py --keep-outputs``.

The two ``_old_*`` functions below are the formulas of the replaced code, kept here as the reference:
``_lr_lambda`` (built-in VAE and diffusion training) and ``_lr_factor`` (small CLIP) were this same
warm-up cosine, and ``_EMA.update`` was the joint U-Net + text encoder EMA.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import nbformat
import numpy as np
import pytest
import torch

from erasure_lib.builtin.training import parameter_ema, render_batch, warmup_cosine
from erasure_lib.data import STYLES, load_fashion_mnist
from erasure_lib.metrics.classifier import GarmentStyleClassifier, real_accuracy
from tools.py2nb import convert, keep_outputs

F32_EPS = torch.finfo(torch.float32).eps


def _old_lr_factor(warmup: int, total: int) -> Callable[[int], float]:
    """The replaced schedule: warm-up (s + 1) / W, then a cosine from 1 down to a floor of 0.1."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _old_decay(decay: float, n: int) -> float:
    """The replaced EMA's decay at its n-th update (n = 1, 2, ...)."""
    return min(decay, (1 + n) / (10 + n))


def _factors(warmup: int, total: int) -> list[float]:
    """The lr factor ``warmup_cosine`` gives each of ``total`` optimizer steps (base lr 1)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, warmup, total)
    out = []
    for _ in range(total):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


# (warm-up, total): diffusion, VAE and small CLIP as notebook 00 trains them, and a small case.
@pytest.mark.parametrize("warmup, total", [(200, 3500), (100, 1000), (100, 1200), (10, 110)])
def test_the_schedule_is_the_old_one_but_its_warm_up_starts_one_step_later(warmup: int, total: int) -> None:
    old, new = _old_lr_factor(warmup, total), _factors(warmup, total)
    for s in range(total):
        if s < warmup:  # the library's warm-up starts from 0: one step behind, 1 / W lower
            assert new[s] == pytest.approx(old(s) - 1 / warmup, abs=1e-12)
        else:  # the same cosine down to the same floor of 0.1
            assert new[s] == pytest.approx(old(s), abs=1e-12)
    assert 0.1 <= new[-1] < 0.1 + 0.9 / (total - warmup)  # near the floor at the last step


def _tiny_module(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))


def _train_step(module: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
    x = torch.randn(32, 8, generator=generator)
    loss = (module(x) - x[:, :4]).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("decay", [0.998, 0.9])  # the built-in model's cap, and one the warm-up reaches early
@pytest.mark.parametrize("seed", [0, 1])
def test_the_ema_is_the_old_one_to_float32_round_off(decay: float, seed: int) -> None:
    """Same decay at every update (bit for bit); the averaged weights differ by round-off only.

    The old update was ``shadow.lerp_(p, 1 - d)``, diffusers' is ``shadow.sub_((1 - d) * (shadow - p))``:
    the same formula, rounded differently. Measured over 300 updates: at most 6.0e-8 apart, 1.14e-7 of
    the largest weight (one float32 ulp, eps = 1.19e-7), not growing with the steps.
    """
    module = _tiny_module(seed)
    params = list(module.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    ema = parameter_ema(params, decay)
    old_shadow = [p.detach().clone() for p in params]
    for n in range(1, 301):
        _train_step(module, optimizer, generator)
        ema.step(params)
        d = _old_decay(decay, n)
        assert ema.cur_decay_value == d
        with torch.no_grad():
            for s, p in zip(old_shadow, params):
                s.lerp_(p.detach(), 1.0 - d)
        scale = max(s.abs().max().item() for s in old_shadow)
        gap = max((a - b).abs().max().item() for a, b in zip(ema.shadow_params, old_shadow))
        assert gap <= 2 * F32_EPS * scale, f"update {n}: {gap:.3g} apart"
    averaged = _tiny_module(seed)
    ema.copy_to(averaged.parameters())
    for p, s in zip(averaged.parameters(), ema.shadow_params):
        assert torch.equal(p.detach(), s)


def test_the_ema_in_float64_is_the_old_formula() -> None:
    """In float64 the round-off is 1e-16: the two updates are one formula."""
    module = _tiny_module(0).double()
    params = list(module.parameters())
    ema = parameter_ema(params, 0.998)
    old_shadow = [p.detach().clone() for p in params]
    generator = torch.Generator().manual_seed(0)
    for n in range(1, 101):
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=generator, dtype=torch.float64), alpha=0.01)
        ema.step(params)
        for s, p in zip(old_shadow, params):
            s.lerp_(p.detach(), 1.0 - _old_decay(0.998, n))
    for a, b in zip(ema.shadow_params, old_shadow):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_an_ema_saved_and_loaded_halfway_continues_exactly() -> None:
    def run(stop: int | None) -> list[torch.Tensor]:
        module = _tiny_module(0)
        params = list(module.parameters())
        optimizer = torch.optim.AdamW(params, lr=1e-2)
        generator = torch.Generator().manual_seed(0)
        ema = parameter_ema(params, 0.998)
        for n in range(1, 301):
            _train_step(module, optimizer, generator)
            ema.step(params)
            if n == stop:
                buffer = io.BytesIO()
                torch.save({"ema": ema.state_dict(), "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                            "generator": generator.get_state()}, buffer)  # fmt: skip
                resumed = _tiny_module(1)  # other weights: everything comes from the checkpoint
                buffer.seek(0)
                state = torch.load(buffer, weights_only=False)
                resumed.load_state_dict(state["module"])
                module, params = resumed, list(resumed.parameters())
                optimizer = torch.optim.AdamW(params, lr=1e-2)
                optimizer.load_state_dict(state["optimizer"])
                generator.set_state(state["generator"])
                ema = parameter_ema(params, 0.998)
                ema.load_state_dict(state["ema"])
                assert ema.optimization_step == stop
        return [s.clone() for s in ema.shadow_params]

    straight, resumed = run(None), run(150)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 12 images miss some classes: their accuracy is NaN
def test_real_accuracy_feeds_the_classifier_what_render_batch_gives(fashion_mnist_available: None) -> None:
    """``metrics.classifier.real_accuracy`` renders its images itself now; they are the training renders."""
    test = load_fashion_mnist("test").subset(12)
    torch.manual_seed(0)
    model = GarmentStyleClassifier(8).eval()
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _module, args: seen.append(args[0].clone()))
    real_accuracy(model, test)
    assert len(seen) == len(STYLES)
    idx = np.arange(12)
    for s, x in enumerate(seen):
        assert torch.equal(x, render_batch(test, idx, np.full(12, s), np.zeros(12, bool), 32))


def test_real_accuracy_of_some_styles_is_that_of_all_styles(fashion_mnist_available: None) -> None:
    """Notebook 01 measures the plain renders only: the same numbers as when every style is measured."""
    test = load_fashion_mnist("test").subset(60)
    torch.manual_seed(0)
    model = GarmentStyleClassifier(8).eval()
    every, plain = real_accuracy(model, test), real_accuracy(model, test, styles=("plain",))
    assert list(plain) == ["plain"] and plain["plain"] == every["plain"]
    assert list(real_accuracy(model, test, styles=("sepia", "sketch"))) == ["sketch", "sepia"]  # in STYLES' order
    with pytest.raises(ValueError, match="unknown styles"):
        real_accuracy(model, test, styles=("watercolour",))


# --- tools/py2nb.py --keep-outputs ----------------------------------------------------------------

SOURCE = """# %% [markdown]
# # Title

# %%
import os

# %% tags=parameters
n: int = 1  # a parameter

# %%
print(n)

# %%
print(n)
"""


def _run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What a papermill run leaves: outputs, counts, cell and notebook metadata, an injected cell."""
    nb = nbformat.from_dict(nb)
    nb.metadata["papermill"] = {"parameters": {"n": 2}, "duration": 5.0}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.0"}
    count = 0
    for cell in nb.cells:
        cell.metadata["papermill"] = {"status": "completed"}
        cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {count}\n")]
    injected = nbformat.v4.new_code_cell("# Parameters\nn = 2", metadata={"tags": ["injected-parameters"]})
    injected["id"] = "injected"
    nb.cells.insert(3, injected)
    return nb


def test_keep_outputs_keeps_unchanged_cells_and_papermills_record() -> None:
    old = _run(convert(SOURCE))
    edited = SOURCE.replace("import os", "import sys")
    nb = keep_outputs(convert(edited), old)
    assert nb.metadata == old.metadata
    assert [c.source for c in nb.cells] == ["# Title", "import sys", "n: int = 1  # a parameter", "# Parameters\nn = 2", "print(n)", "print(n)"]
    title, imports, parameters, injected, first, second = nb.cells
    assert imports.outputs == [] and imports.execution_count is None and imports.metadata == {}
    assert title.metadata == old.cells[0].metadata
    assert parameters.metadata["tags"] == ["parameters"] and parameters.execution_count == 2
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert first.outputs[0].text == "output 3\n" and second.outputs[0].text == "output 4\n"  # the k-th copy: the k-th
    nbformat.validate(nb)
    # The cells are the source's: the notebook test's comparison (tests/test_notebooks.py) sees no difference.
    assert [(c.cell_type, c.source) for c in nb.cells if c is not injected] == [(c.cell_type, c.source) for c in convert(edited).cells]


def test_keep_outputs_lets_the_source_decide_the_parameters_tag() -> None:
    old = _run(convert(SOURCE.replace(" tags=parameters", "")))
    nb = keep_outputs(convert(SOURCE), old)
    assert nb.cells[2].metadata["tags"] == ["parameters"] and nb.cells[2].metadata["papermill"] == {"status": "completed"}

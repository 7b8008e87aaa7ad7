"""The erasure window and the classifier-free stopping rule: per-step checkpoints and probes in
few-shot erasure, batched judging of checkpoints, window bounds and rule calibration on hand-made
trajectories whose answers are known."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONCEPT, state
from diffusers import StableDiffusionPipeline

from erasure_lib import data, plots, stopping, window
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.methods.base import NonFiniteLossError, model_digest
from erasure_lib.methods.fewshot import FewShotConfig, erase

RETAIN = ("sandal", "bag", "trouser")


def run(pipeline: StableDiffusionPipeline, images: object, **options: object):
    return erase(pipeline, CONCEPT, images, FewShotConfig(lr=1e-3, **options), progress_bar=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Few-shot erasure: step checkpoints, probes, the rule, divergence
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path):
    """6 steps, no stop, probes after every step, checkpoints after steps 2 and 5."""
    return run(tiny_pipeline, concept_dir, epochs=3, stop_check="step", stop_retain=RETAIN, checkpoint_steps=(2, 5))


def test_probes_do_not_change_the_erasure(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, traced) -> None:
    plain = run(tiny_pipeline, concept_dir, epochs=3)
    assert plain.losses == traced.losses
    assert all(torch.equal(a, b) for a, b in zip(state(plain.components["text_encoder"]).values(),
                                                 state(traced.components["text_encoder"]).values()))  # fmt: skip


def test_trace_has_every_step_and_starts_near_the_base(traced) -> None:
    trace = traced.info["probe_trace"]
    assert [e["step"] for e in trace] == [1, 2, 3, 4, 5, 6]
    assert all(e["retain_drift"] > 0 for e in trace)
    # gradient ascent: the concept's probe loss ends above its start, and the drift grows from step 1
    assert trace[-1]["concept_loss_ratio"] > 1.0
    assert trace[-1]["retain_drift"] > trace[0]["retain_drift"]
    assert traced.info["steps_run"] == 6 and traced.info["stop_reason"] is None


def test_step_checkpoints_hold_the_weights_of_that_step(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, traced) -> None:
    assert sorted(traced.step_checkpoints) == [2, 5]
    two = run(tiny_pipeline, concept_dir, epochs=1)  # 4 images, batch 2: one epoch is 2 steps
    at_two = traced.component_after_step("text_encoder", 2).state_dict()
    assert all(torch.equal(at_two[k], v) for k, v in two.components["text_encoder"].state_dict().items())
    with pytest.raises(ValueError, match="no checkpoint after step 3"):
        traced.component_after_step("text_encoder", 3)
    with pytest.raises(ValueError, match="epoch or step"):
        traced.apply(tiny_pipeline, epoch=1, step=2)


def test_the_rule_stops_where_its_trace_says(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, traced) -> None:
    trace = pd.DataFrame(traced.info["probe_trace"])
    ratio = float(trace.concept_loss_ratio.iloc[2])  # reached at step 3 (the ratio rises step by step here)
    expected = stopping.rule_stop_step(trace, ratio, np.inf, max_step=6)
    stopped = run(tiny_pipeline, concept_dir, epochs=3, stop_check="step", stop_retain=RETAIN, stop_loss_ratio=ratio)
    assert stopped.info["steps_run"] == expected <= 3
    assert stopped.losses == traced.losses[:expected]
    assert "concept probe" in stopped.info["stop_reason"]
    drift = float(trace.retain_drift.iloc[1])
    by_drift = run(tiny_pipeline, concept_dir, epochs=3, stop_check="step", stop_retain=RETAIN, stop_retain_drift=drift)
    assert by_drift.info["steps_run"] == stopping.rule_stop_step(trace, np.inf, drift, max_step=6)
    assert "retain drift" in by_drift.info["stop_reason"]


def test_probes_every_k_steps_are_those_of_every_step(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, traced) -> None:
    sparse = run(tiny_pipeline, concept_dir, epochs=3, stop_check="step", stop_retain=RETAIN, checkpoint_steps=(5,), probe_every=4)
    assert sparse.losses == traced.losses  # the probes draw from a generator of their own
    every = {e["step"]: e for e in traced.info["probe_trace"]}
    # step 2 ends the first epoch with nothing measured yet; 4 is the 4th step, 6 the last
    assert [e["step"] for e in sparse.info["probe_trace"]] == [2, 4, 6]
    for entry in sparse.info["probe_trace"]:
        assert entry == pytest.approx(every[entry["step"]])
    assert sparse.info["probe_ratios"] == pytest.approx([every[s]["concept_loss_ratio"] for s in (2, 4, 6)])
    trace = pd.DataFrame(traced.info["probe_trace"])
    ratio = float(trace.concept_loss_ratio.iloc[2])  # first reached at step 3: a rule probing every 4 steps stops at 4
    stopped = run(tiny_pipeline, concept_dir, epochs=3, stop_check="step", stop_retain=RETAIN, stop_loss_ratio=ratio, probe_every=4)
    assert stopped.info["steps_run"] == 4 and stopped.losses == traced.losses[:4]


def test_a_cached_run_is_keyed_by_the_probe_interval() -> None:
    prompts = window.heldout_prompts(CONCEPT, n_erased=1, n_others=1)
    def key(**options: object) -> str:
        return window.run_key("m", CONCEPT, FewShotConfig(**options), [2, 4], prompts, GenerationConfig(2, 7.5, 8), [])  # type: ignore[arg-type]
    assert "probe_every" not in key()  # every step: the key of runs cached before the option existed
    assert key(probe_every=1) == key() != key(probe_every=5)


def test_rule_options_are_checked() -> None:
    with pytest.raises(ValueError, match="probe_every"):
        FewShotConfig(probe_every=0)
    with pytest.raises(ValueError, match="stop_retain"):
        FewShotConfig(stop_retain_drift=1.0)
    with pytest.raises(ValueError, match="positive"):
        FewShotConfig(stop_retain_drift=0.0, stop_retain=("bag",))
    with pytest.raises(ValueError, match="stop_check"):
        FewShotConfig(stop_check="batch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-based"):
        FewShotConfig(checkpoint_steps=(0, 2))
    with pytest.raises(ValueError, match="tuples"):
        FewShotConfig(stop_retain="bag")  # type: ignore[arg-type]


def test_a_diverging_erasure_raises_and_names_step_and_lr(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    with pytest.raises(NonFiniteLossError) as info:
        erase(tiny_pipeline, CONCEPT, concept_dir, FewShotConfig(lr=1e12, epochs=4), progress_bar=False)
    assert info.value.lr == 1e12 and info.value.step >= 1
    assert "lr 1e+12" in str(info.value) and f"step {info.value.step}" in str(info.value)


# --------------------------------------------------------------------------------------------
# Judging checkpoints
# --------------------------------------------------------------------------------------------


def test_heldout_prompts_use_no_training_or_erasure_wording() -> None:
    table = window.heldout_prompts("bag", n_erased=5, n_others=2)
    assert not set(data.HELDOUT_OBJECT_TEMPLATES) & set(data.OBJECT_TEMPLATES)
    assert (table["class"] == "bag").sum() == 5 and len(table) == 5 + 2 * 9
    assert table.case_number.tolist() == list(range(len(table)))
    with pytest.raises(ValueError, match="unknown concept"):
        window.heldout_prompts("hat")


def test_batched_generation_with_encoders_matches_generate(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts = pd.DataFrame({"prompt": ["a photo of a bag", "a picture of a sneaker", "a coat"], "evaluation_seed": [3, 4, 5]})
    config = GenerationConfig(num_inference_steps=2, batch_size=4)
    expected = generate(tiny_pipeline, list(prompts.prompt), list(prompts.evaluation_seed), config, progress_bar=False)
    got = window.generate_with_encoders(tiny_pipeline, {0: tiny_pipeline.text_encoder, 7: tiny_pipeline.text_encoder},
                                        prompts, config, progress_bar=False)  # fmt: skip
    assert sorted(got) == [0, 7]
    for images in got.values():
        for a, b in zip(images, expected):
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


# --------------------------------------------------------------------------------------------
# Window bounds and the rule's calibration on hand-made trajectories
# --------------------------------------------------------------------------------------------


def trajectory(concept: str, seed: int, erased: list[float], others: list[float], steps=(0, 2, 4, 8)) -> pd.DataFrame:
    return pd.DataFrame({"stand_in": "s", "lr": 1e-3, "concept": concept, "seed": seed, "step": list(steps),
                         "erased_share": erased, "others_accuracy": others})  # fmt: skip


TRAJ = pd.concat([
    trajectory("bag", 0, [1.0, 0.5, 0.0, 0.0], [0.90, 0.90, 0.85, 0.60]),  # clean at 4, damaged at 8
    trajectory("coat", 0, [1.0, 0.0, 0.0, 0.0], [0.90, 0.70, 0.60, 0.50]),  # erased at 2 but damaged at 2: no window
    trajectory("dress", 0, [1.0, 1.0, 1.0, 0.8], [0.90, 0.90, 0.90, 0.90]),  # never erased
], ignore_index=True)  # fmt: skip


def test_window_bounds_on_known_trajectories() -> None:
    b = window.window_bounds(TRAJ).set_index("concept")
    assert (b.loc["bag", "erased_step"], b.loc["bag", "damage_step"], b.loc["bag", "clean_step"]) == (4, 8, 4)
    assert b.loc["bag", "clean"] and not b.loc["coat", "clean"] and not b.loc["dress", "clean"]
    assert (b.loc["coat", "erased_step"], b.loc["coat", "damage_step"]) == (2, 2)
    assert np.isnan(b.loc["dress", "erased_step"]) and np.isnan(b.loc["dress", "damage_step"])
    with pytest.raises(ValueError, match="no step 0"):
        window.window_bounds(TRAJ[TRAJ.step > 0])


def test_fixed_step_outcomes_count_clean_runs() -> None:
    f = window.fixed_step_outcomes(TRAJ).set_index("step")
    assert f.loc[4, "clean_share"] == pytest.approx(1 / 3) and f.loc[2, "clean_share"] == 0.0
    assert f.loc[8, "others_drop"] == pytest.approx(np.mean([0.30, 0.40, 0.0]))


def test_stand_ins_are_compared_on_the_steps_they_share() -> None:
    """A finer grid must not find a window that the other stand-in's grid could not see."""
    fine = pd.concat([
        trajectory("bag", 0, [1.0, 0.0, 0.0, 0.0, 0.0], [0.9, 0.9, 0.7, 0.6, 0.5], steps=(0, 3, 4, 6, 8)),  # clean only at 3
        trajectory("coat", 0, [1.0, 0.5, 0.0, 0.0, 0.0], [0.9, 0.9, 0.9, 0.9, 0.6], steps=(0, 3, 4, 6, 8)),  # clean at 4 and 6
    ], ignore_index=True).assign(stand_in="fine")  # fmt: skip
    coarse = TRAJ.assign(stand_in="coarse")  # steps 2, 4, 8: bag clean at 4, coat and dress never
    both = pd.concat([fine, coarse], ignore_index=True)
    assert window.shared_steps(both, ["fine", "coarse"]) == {1e-3: (4, 8)}
    bounds, summary = window.compare_stand_ins(both, {1e-3: ["fine", "coarse"]})
    b = bounds.set_index(["stand_in", "concept"])
    assert not b.loc[("fine", "bag"), "clean"] and b.loc[("fine", "bag"), "damage_step"] == 4  # step 3 is not shared
    assert b.loc[("fine", "coat"), "clean_step"] == 4 and b.loc[("coarse", "bag"), "clean_step"] == 4
    s = summary.set_index("stand_in")
    assert s.loc["fine", "shared_steps"] == "4 8" and s.loc["fine", "runs"] == 2 and s.loc["coarse", "runs"] == 3
    assert s.loc["fine", "clean_share"] == 0.5 and s.loc["coarse", "clean_share"] == pytest.approx(1 / 3)
    assert s.loc["coarse", "concepts_clean"] == 1 and s.loc["coarse", "never_erased"] == 1  # dress
    assert s.loc["fine", "best_fixed_step"] == 4 and s.loc["fine", "best_fixed_clean_share"] == 0.5
    assert s.loc["coarse", "clean_share_low"] <= 1 / 3 <= s.loc["coarse", "clean_share_high"]
    with pytest.raises(ValueError, match="share no judged step"):
        window.compare_stand_ins(both, {1e-4: ["fine", "coarse"]})
    # a run whose base model does not draw the concept has nothing to erase: left out, and said so
    undrawn = both.copy()
    undrawn.loc[(undrawn.stand_in == "coarse") & (undrawn.concept == "dress") & (undrawn.step == 0), "erased_share"] = 0.2
    bounds, summary = window.compare_stand_ins(undrawn, {1e-3: ["fine", "coarse"]})
    s = summary.set_index("stand_in")
    assert s.loc["coarse", "runs"] == 2 and s.loc["coarse", "left_out"] == 1 and s.loc["coarse", "left_out_concepts"] == "dress"
    assert s.loc["fine", "left_out"] == 0 and s.loc["coarse", "clean_share"] == 0.5
    assert "dress" not in set(bounds[bounds.stand_in == "coarse"].concept)
    # `concepts` compares those only, and every compared stand-in must have run each of them
    bounds, summary = window.compare_stand_ins(both, {1e-3: ["fine", "coarse"]}, concepts=["bag", "coat"])
    assert set(bounds.concept) == {"bag", "coat"} and summary.set_index("stand_in").loc["coarse", "runs"] == 2
    with pytest.raises(ValueError, match=r"fine has no window at lr 0.001 for \['dress'\]"):
        window.compare_stand_ins(both, {1e-3: ["fine", "coarse"]}, concepts=["bag", "dress"])


def test_window_figure_puts_panels_in_the_order_compared_and_wraps_rows() -> None:
    three = pd.concat([TRAJ.assign(stand_in=name) for name in ("c", "a", "b")], ignore_index=True)
    bounds, _ = window.compare_stand_ins(three, {1e-3: ["c", "a", "b"]})
    fig = plots.erasure_window(three, bounds, columns=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and [ax.get_title().split(",")[0] for ax in visible] == ["c", "a", "b"]
    plt.close(fig)


def test_rule_grid_reads_each_stop_from_the_trace() -> None:
    steps = np.arange(1, 9)
    traces = pd.concat([
        pd.DataFrame({"stand_in": "s", "lr": 1e-3, "concept": c, "seed": 0, "step": steps,
                      "concept_loss_ratio": 1 + k * steps / 8, "retain_drift": d * steps})
        for c, k, d in (("bag", 1.0, 0.1), ("coat", 2.0, 1.0), ("dress", 0.1, 0.05))
    ])  # fmt: skip
    assert stopping.rule_stop_step(traces[traces.concept == "bag"], 1.5, np.inf, 8) == 4
    assert stopping.rule_stop_step(traces[traces.concept == "coat"], 9.0, 2.0, 8) == 2
    assert stopping.rule_stop_step(traces[traces.concept == "dress"], 9.0, 9.0, 8) == 8
    grid = stopping.rule_grid(TRAJ, traces, ratios=[1.5], drifts=[np.inf]).set_index("concept")
    assert grid.loc["bag", "stop_step"] == 4 and grid.loc["bag", "clean"]
    # a stop between judged steps is read at the next judged step (coat stops at 2: judged 2)
    assert grid.loc["coat", "judged_step"] == 2 and not grid.loc["coat", "clean"]
    best = stopping.summarize_settings(stopping.rule_grid(TRAJ, traces, [1.5, 3.0], [np.inf]), ["ratio", "drift"])
    assert best.iloc[0].ratio == 1.5 and best.iloc[0].clean_share == pytest.approx(1 / 3)


def test_the_chosen_settings_run_the_calibrated_rule_and_fixed_count() -> None:
    rule = pd.Series({"lr": 1e-4, "ratio": 1.4, "drift": 1e9})
    fixed = pd.Series({"lr": 1e-3, "step": 6})
    settings = stopping.chosen_settings(rule, fixed, {1e-4: 121, 1e-3: 24}, retain=RETAIN)
    assert list(settings) == ["stopping rule", "fixed 6 steps"]
    stopped, fixed_config = settings.values()
    assert (stopped.lr, stopped.epochs, stopped.stop_check, stopped.stop_retain) == (1e-4, 61, "step", RETAIN)
    assert (stopped.stop_loss_ratio, stopped.stop_retain_drift) == (1.4, None)  # 1e9 switches the drift probe off
    assert fixed_config == FewShotConfig.builtin(lr=1e-3, epochs=3) and fixed_config.stop_loss_ratio is None
    both = stopping.chosen_settings(rule.replace(1e9, 2.0), fixed, {1e-4: 120}, retain=RETAIN)["stopping rule"]
    assert (both.epochs, both.stop_loss_ratio, both.stop_retain_drift) == (60, 1.4, 2.0)


def test_heldout_summary_and_bootstrap() -> None:
    heldout = pd.DataFrame({"setting": "rule", "concept": ["bag", "bag", "coat", "coat"], "seed": [3, 4, 3, 4],
                            "steps_run": [4, 6, 2, 2], "erased_share": [0.0, 0.2, 0.0, 0.0], "others_drop": [0.0, 0.0, 0.3, 0.05],
                            "related_accuracy": [np.nan, np.nan, 0.5, 0.7]})  # fmt: skip
    s = stopping.heldout_summary(heldout).iloc[0]
    assert s.clean_share == 0.5 and s.concepts_clean == 1 and s.steps_mean == 3.5
    assert s.erased_share_low <= s.erased_share <= s.erased_share_high
    assert stopping.spread([1.0, 2.0, 3.0]) == stopping.spread([1.0, 2.0, 3.0])


def test_sampling_convergence_without_runs_is_an_empty_table(tiny_pipeline: StableDiffusionPipeline) -> None:
    table = window.sampling_convergence(tiny_pipeline, None, lambda c, s: [], [], FewShotConfig(), window.heldout_prompts, [10, 25], 7.5)  # type: ignore[arg-type]
    assert table.empty and list(table.columns)[:4] == ["concept", "seed", "model", "sampling_steps"]


def test_a_cached_run_is_keyed_by_image_content_not_location(tmp_path: Path) -> None:
    from PIL import Image

    from erasure_lib.data import image_digest

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / folder / "x.png")
    assert image_digest(tmp_path / "a" / "x.png") == image_digest(str(tmp_path / "b" / "x.png"))
    Image.new("RGB", (4, 4), (10, 20, 31)).save(tmp_path / "b" / "x.png")
    assert image_digest(tmp_path / "a" / "x.png") != image_digest(tmp_path / "b" / "x.png")
    assert image_digest(Image.new("RGB", (4, 4))) != image_digest(Image.new("RGB", (4, 4), (1, 1, 1)))


def test_a_cached_run_is_keyed_by_the_model(tiny_pipeline: StableDiffusionPipeline) -> None:
    import copy

    def copy_of(pipeline: StableDiffusionPipeline) -> StableDiffusionPipeline:
        parts = {**pipeline.components, "unet": copy.deepcopy(pipeline.unet), "text_encoder": copy.deepcopy(pipeline.text_encoder)}
        return StableDiffusionPipeline(**parts)

    digest = model_digest(tiny_pipeline)
    assert model_digest(copy_of(tiny_pipeline)) == digest
    for part in ("unet", "text_encoder"):
        other = copy_of(tiny_pipeline)
        with torch.no_grad():
            next(getattr(other, part).parameters()).view(-1)[0] += 1e-3
        assert model_digest(other) != digest, part

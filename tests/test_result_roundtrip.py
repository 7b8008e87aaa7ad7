"""``ErasureResult.save`` then ``ErasureResult.load`` gives back the config dataclass, the losses and the
typed info record of every method; the records read as mappings; folders saved before the typed
records (``erasure.json`` without ``format``) still load."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import torch
from conftest import CONCEPT
from diffusers import StableDiffusionPipeline

from erasure_lib.methods import esd, fewshot, spm, uce
from erasure_lib.methods.base import ErasureInfo, ErasureResult, from_json_value, rebuild, to_json_value

FORMAT_2_KEYS = ("format", "config_class", "info_class", "info", "losses")


def erase_with(method: str, pipeline: StableDiffusionPipeline, images: Path | None) -> ErasureResult:
    """A tiny run of ``method`` whose config sets tuples, Literals, floats and ``None`` away from their defaults."""
    if method == "fewshot":
        config = fewshot.FewShotConfig(lr=1e-3, epochs=2, batch_size=2, betas=(0.8, 0.95), preserve_weight=0.5,
                                       preserve=("sandal",), stop_check="step", stop_retain=("bag",),
                                       stop_retain_drift=1e9, checkpoint_steps=(1, 3), flip_p=0.25)
        return fewshot.erase(pipeline, CONCEPT, images, config, progress_bar=False)
    if method == "esd":
        config = esd.ESDConfig(train_method="noxattn", iterations=2, ddim_steps=3, lr=1e-3, negative_guidance=0.5)
        return esd.erase(pipeline, CONCEPT, None, config, progress_bar=False)
    if method == "uce":
        return uce.erase(pipeline, CONCEPT, None, uce.UCEConfig(preserve=("boot", "bag"), lamb=0.25), progress_bar=False)
    config = spm.SPMConfig(iterations=2, max_denoising_steps=3, lr=1e-2, lr_warmup_steps=0, lr_scheduler="constant",
                           anchor_batch_size=2, alpha=0.5)
    return spm.erase(pipeline, CONCEPT, None, config, progress_bar=False)


RECORDS = {"fewshot": fewshot.FewShotInfo, "esd": esd.ESDInfo, "uce": uce.UCEInfo, "spm": spm.SPMInfo}


@pytest.mark.parametrize("method", ["fewshot", "esd", "uce", "spm"])
def test_save_then_load_gives_back_config_losses_and_info(
    method: str, tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, tmp_path: Path
) -> None:
    result = erase_with(method, tiny_pipeline, concept_dir)
    assert type(result.info) is RECORDS[method]
    loaded = ErasureResult.load(result.save(tmp_path / method, base_model="tiny"))

    assert type(loaded.config) is type(result.config) and loaded.config == result.config
    for f in dataclasses.fields(result.config):  # tuples stay tuples, floats the same floats
        a, b = getattr(loaded.config, f.name), getattr(result.config, f.name)
        assert type(a) is type(b) and a == b, f.name
    assert loaded.losses == result.losses and all(type(x) is float for x in loaded.losses)
    assert type(loaded.info) is type(result.info) and loaded.info == result.info
    assert (loaded.method, loaded.concept) == (result.method, result.concept)
    assert (loaded.setup_seconds, loaded.optimization_seconds) == (result.setup_seconds, result.optimization_seconds)
    (name,) = result.components
    saved, now = loaded.components[name].state_dict(), result.components[name].state_dict()
    assert saved.keys() == now.keys() and all(torch.equal(saved[k], now[k]) for k in now)


def test_fewshot_record_keeps_its_types(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, tmp_path: Path) -> None:
    result = erase_with("fewshot", tiny_pipeline, concept_dir)
    info = result.info
    assert isinstance(info, fewshot.FewShotInfo)
    assert info.retained == ["sandal"] and info.steps_run == 4 and info.stop_reason is None
    assert [e["step"] for e in info.probe_trace] == [1, 2, 3, 4] and "retain_drift" in info.probe_trace[0]
    loaded = ErasureResult.load(result.save(tmp_path / "f", base_model="tiny")).info
    assert all(type(e["step"]) is int for e in loaded.probe_trace)  # the trace's steps stay ints
    # The summary part of erasure.json is as before: the info fields at the top level.
    meta = json.loads((tmp_path / "f" / "erasure.json").read_text())
    assert meta["steps_run"] == 4 and meta["retained"] == ["sandal"] and meta["config"]["betas"] == [0.8, 0.95]


def test_records_read_as_read_only_mappings() -> None:
    info = esd.ESDInfo(trainable_parameters=7, stop_steps=[3, 1])
    assert isinstance(info, ErasureInfo)
    assert info["stop_steps"] is info.stop_steps and info.get("trainable_parameters") == 7
    assert list(info) == ["trainable_parameters", "stop_steps", "checkpoint_seconds"] and len(info) == 3
    assert dict(info) == {"trainable_parameters": 7, "stop_steps": [3, 1], "checkpoint_seconds": {}} and {**info} == dict(info)
    assert "stop_steps" in info and "losses" not in info and info.get("losses") is None
    with pytest.raises(KeyError):
        info["losses"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.stop_steps = []  # type: ignore[misc]
    assert info == esd.ESDInfo(7, [3, 1]) and info != esd.ESDInfo(7, [3]) and info != dict(info)


def test_a_folder_saved_before_typed_records_still_loads(
    tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, tmp_path: Path
) -> None:
    for method in ("fewshot", "spm"):
        result = erase_with(method, tiny_pipeline, concept_dir)
        out = result.save(tmp_path / method, base_model="tiny")
        record_file = out / "erasure.json"
        old = {k: v for k, v in json.loads(record_file.read_text()).items() if k not in FORMAT_2_KEYS}
        record_file.write_text(json.dumps(old))  # erasure.json as the code before format 2 wrote it
        if method == "fewshot":
            loaded = ErasureResult.load(out)
            assert type(loaded.config) is fewshot.FewShotConfig and loaded.config == result.config
            assert loaded.info == result.info and loaded.losses == []  # the old format kept no losses
        else:  # the adapter was saved as a summary only: the info stays the saved dict
            with pytest.warns(UserWarning, match="info is given back as the saved dict"):
                loaded = ErasureResult.load(out)
            assert loaded.config == result.config and isinstance(loaded.info, dict)
            assert loaded.info["stop_steps"] == result.info.stop_steps and loaded.info["adapter"].startswith("SPM adapters")
            with pytest.raises(ValueError, match="no SPM adapter"):
                spm.save_adapter(loaded, tmp_path / "a.safetensors")


def test_a_config_that_no_longer_fits_comes_back_as_its_dict(tmp_path: Path) -> None:
    result = ErasureResult(method="uce", concept="sneaker", components={}, config=uce.UCEConfig(),
                           info=uce.UCEInfo(edited_projections=["a.attn2.to_v"], erase_tokens=3, preserve_tokens=0))
    out = result.save(tmp_path / "r", base_model="tiny")
    record = json.loads((out / "erasure.json").read_text())
    record["config"]["renamed_option"] = 1
    (out / "erasure.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="config is given back as the saved dict.*renamed_option"):
        loaded = ErasureResult.load(out)
    assert loaded.config["renamed_option"] == 1 and loaded.info == result.info


def test_hand_made_results_keep_their_dicts(tmp_path: Path) -> None:
    result = ErasureResult(method="custom", concept="x", components={}, config={"lr": 0.1, "steps": (1, 2)},
                           losses=[0.5, -1.25], info={"note": "hand made", "path": Path("a/b")})
    loaded = ErasureResult.load(result.save(tmp_path / "r", base_model="tiny"))
    assert loaded.config == {"lr": 0.1, "steps": [1, 2]} and loaded.losses == [0.5, -1.25]
    assert loaded.info == {"note": "hand made", "path": "a/b"}


@dataclass(frozen=True)
class _Inner:
    pair: tuple[int, float]
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class _Outer:
    inner: _Inner
    by_step: dict[int, list[tuple[int, int]]]
    cap: float | None = None
    names: tuple[str, ...] = ()


def test_json_values_round_trip_by_annotation() -> None:
    value = _Outer(_Inner((1, 0.1 + 0.2), "b"), {3: [(1, 2)], 10: []}, cap=1e-300, names=("x", "y"))
    data = json.loads(json.dumps(to_json_value(value)))
    assert data["by_step"] == {"3": [[1, 2]], "10": []}
    back = rebuild(_Outer, data)
    assert back == value and type(back.inner.pair) is tuple and back.inner.pair[1] == 0.1 + 0.2
    assert rebuild(_Outer, {"inner": {"pair": [1, 2]}, "by_step": {}}) == _Outer(_Inner((1, 2)), {})
    assert from_json_value(None, int | None) is None and from_json_value(2, float) == 2
    for bad, hint in ((["c"], tuple[Literal["a"], ...]), ("1", int), ([1], tuple[int, int]), ({"x": 1}, list)):
        with pytest.raises(ValueError):
            from_json_value(bad, hint)
    with pytest.raises(ValueError, match="no field"):
        rebuild(_Inner, {"pair": [1, 2], "extra": 0})
    with pytest.raises(ValueError, match="needs the field"):
        rebuild(_Inner, {})
    with pytest.raises(TypeError, match="cannot write a Tensor"):
        to_json_value({"t": torch.zeros(2)})


def test_a_loaded_result_is_placed_like_the_pipeline_it_goes_into(
    tiny_pipeline: StableDiffusionPipeline, concept_dir: Path, tmp_path: Path
) -> None:
    """load() reads float32 weights onto the CPU; placed_like moves them to the replaced component's
    device and dtype (here bfloat16 on the CPU: a CUDA pipeline's device works the same way), as the
    erasure cache and the shard CLI do before apply()."""
    from erasure_lib.methods.base import erase_or_load

    result = erase_with("uce", tiny_pipeline, None)
    folder = result.save(tmp_path / "uce", base_model="tiny")
    half = StableDiffusionPipeline(**tiny_pipeline.components)
    half.unet = copy.deepcopy(tiny_pipeline.unet).to(torch.bfloat16)
    loaded = ErasureResult.load(folder)
    assert loaded.components["unet"].dtype == torch.float32
    assert loaded.placed_like(half) is loaded and loaded.components["unet"].dtype == torch.bfloat16
    assert loaded.apply(half).unet.dtype == torch.bfloat16
    assert tiny_pipeline.unet.dtype == torch.float32  # the pipelines given are not changed
    # the erasure cache reads a result back placed like the pipeline it erased
    config = uce.UCEConfig(preserve=("boot", "bag"), lamb=0.25)
    erase_or_load(uce.erase, half, CONCEPT, None, config, tmp_path / "cache", "tiny")
    cached = erase_or_load(uce.erase, half, CONCEPT, None, config, tmp_path / "cache", "tiny")
    assert cached.components["unet"].dtype == torch.bfloat16

"""The sd14 profile without weights: SD v1.4's exact architecture (configs in the repository, random
weights), the reduced-width stand-in saved and loaded as a diffusers folder, few-shot erasure and
generation on it, the profile's parameter files, and hub access through erasure_lib.hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from PIL import Image

from erasure_lib import hub, sd14
from erasure_lib.generate import GenerationConfig, generate_to_folder
from erasure_lib.methods import fewshot
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES
from erasure_lib.models import load_pipeline, model_resolution
from erasure_lib.paths import BUILTIN_MODEL_DIR, NOTEBOOKS_DIR

SD14_REVISION = "133a221b8aa7292a167afc5127cb63fb5005638b"
PARAMS_DIR = NOTEBOOKS_DIR / "params" / "sd14"
PAPER_DIR = NOTEBOOKS_DIR / "paper"


# --- the architecture --------------------------------------------------------------------------


def test_unet_config_is_sd14() -> None:
    c = sd14.sd14_config("unet")
    assert c["block_out_channels"] == [320, 640, 1280, 1280]
    assert c["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert c["up_block_types"] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert (c["cross_attention_dim"], c["attention_head_dim"], c["layers_per_block"]) == (768, 8, 2)
    assert (c["in_channels"], c["out_channels"], c["sample_size"], c["norm_num_groups"]) == (4, 4, 64, 32)
    assert c["act_fn"] == "silu" and c["flip_sin_to_cos"] is True and c["freq_shift"] == 0


def test_vae_text_encoder_scheduler_tokenizer_configs_are_sd14() -> None:
    vae = sd14.sd14_config("vae")
    assert vae["block_out_channels"] == [128, 256, 512, 512] and vae["latent_channels"] == 4
    assert (vae["layers_per_block"], vae["sample_size"]) == (2, 512)
    text = sd14.sd14_config("text_encoder")
    assert (text["num_hidden_layers"], text["hidden_size"], text["num_attention_heads"]) == (12, 768, 12)
    assert (text["intermediate_size"], text["vocab_size"], text["max_position_embeddings"]) == (3072, 49408, 77)
    assert text["hidden_act"] == "quick_gelu"
    scheduler = sd14.build_scheduler()
    assert type(scheduler).__name__ == "PNDMScheduler"
    cfg = scheduler.config
    assert (cfg.beta_schedule, cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps) == ("scaled_linear", 0.00085, 0.012, 1000)
    assert cfg.skip_prk_steps is True and cfg.steps_offset == 1 and cfg.set_alpha_to_one is False
    tokenizer = sd14.build_tokenizer()
    assert tokenizer.model_max_length == 77 and len(tokenizer) == 49408
    assert len(tokenizer("a photo of a tench", padding="max_length").input_ids) == 77


@pytest.mark.parametrize("component", ["unet", "vae", "text_encoder"])
def test_full_parameter_counts_are_the_published_ones(component: str) -> None:
    """Counted on the meta device: nothing is allocated."""
    assert sd14.count_parameters(component, "full") == sd14.PARAMETER_COUNTS[component]  # type: ignore[arg-type]


def test_published_counts_in_millions() -> None:
    assert round(sd14.PARAMETER_COUNTS["unet"] / 1e6, 1) == 859.5
    assert round(sd14.PARAMETER_COUNTS["text_encoder"] / 1e6, 1) == 123.1
    assert round(sd14.PARAMETER_COUNTS["vae"] / 1e6, 1) == 83.7


def _layout(module: torch.nn.Module) -> list[tuple[str, str]]:
    """Every sub-module's name and class: the structure, without the widths."""
    return [(name, type(m).__name__) for name, m in module.named_modules()]


TINY_CHANGES = {  # the only keys the tiny scale changes: widths and the sample size
    "unet": {"block_out_channels", "sample_size", "cross_attention_dim"},
    "vae": {"block_out_channels", "sample_size"},
    "text_encoder": {"hidden_size", "intermediate_size", "projection_dim"},
}


@pytest.mark.parametrize("component", ["unet", "vae", "text_encoder"])
def test_tiny_scale_keeps_the_structure(component: str) -> None:
    full, tiny = sd14.sd14_config(component, "full"), sd14.sd14_config(component, "tiny")  # type: ignore[arg-type]
    assert {k for k in full if full[k] != tiny[k]} == TINY_CHANGES[component]
    builder = {"unet": sd14.build_unet, "vae": sd14.build_vae, "text_encoder": sd14.build_text_encoder}[component]
    with torch.device("meta"):
        assert _layout(builder("full")) == _layout(builder("tiny"))


@pytest.mark.parametrize(("scale", "width"), [("full", 768), ("tiny", 96)])
def test_cross_attention_reads_the_text_encoder_at_both_scales(scale: str, width: int) -> None:
    text = sd14.sd14_config("text_encoder", scale)  # type: ignore[arg-type]
    assert text["hidden_size"] == width and text["intermediate_size"] == 4 * width and text["num_attention_heads"] == 12
    assert sd14.sd14_config("unet", scale)["cross_attention_dim"] == width  # type: ignore[arg-type]
    with torch.device("meta"):
        unet = sd14.build_unet(scale)  # type: ignore[arg-type]
    attn2 = [m for n, m in unet.named_modules() if n.endswith("attn2")]
    assert len(attn2) == 16 and all(m.to_k.in_features == width for m in attn2)  # SD v1.4: 16 cross-attentions


def test_mlp_final_attn_trains_sd14s_59m_parameters() -> None:
    """What the paper's option trains on SD v1.4's full-width text encoder (counted on the meta device)."""
    with torch.device("meta"):
        text_encoder = sd14.build_text_encoder("full")
    trained = fewshot.trainable_parameters(text_encoder, "mlp-final-attn")
    assert sum(p.numel() for p in trained.values()) == _mlp_final_attn_count() == 59_031_552


def test_resolution_override_and_its_check() -> None:
    assert sd14.sd14_config("unet", resolution=256)["sample_size"] == 32
    assert sd14.sd14_config("vae", resolution=256)["sample_size"] == 256
    with pytest.raises(ValueError, match="multiple of 64"):
        sd14.sd14_config("unet", resolution=100)
    with pytest.raises(ValueError, match="scale"):
        sd14.sd14_config("unet", scale="huge")  # type: ignore[arg-type]


# --- the reduced-width stand-in as a diffusers folder --------------------------------------------


@pytest.fixture(scope="module")
def tiny_sd14_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BUILTIN_MODEL_DIR / "tokenizer").is_dir():
        pytest.skip("the repository's CLIP tokenizer (models/builtin/tokenizer) is missing")
    return sd14.build_random_sd14(tmp_path_factory.mktemp("sd14") / "tiny-sd14", seed=0, scale="tiny")


@pytest.fixture(scope="module")
def tiny_sd14(tiny_sd14_dir: Path) -> StableDiffusionPipeline:
    return load_pipeline(tiny_sd14_dir)


def test_saved_folder_is_a_diffusers_pipeline(tiny_sd14_dir: Path) -> None:
    index = json.loads((tiny_sd14_dir / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"] and index["scheduler"] == ["diffusers", "PNDMScheduler"]
    for component in ("unet", "vae", "text_encoder"):
        assert list((tiny_sd14_dir / component).glob("*.safetensors")), component
    unet_config = json.loads((tiny_sd14_dir / "unet" / "config.json").read_text())
    assert unet_config["cross_attention_dim"] == 96 and unet_config["block_out_channels"] == [32, 64, 128, 128]


def test_load_pipeline_loads_the_folder(tiny_sd14: StableDiffusionPipeline) -> None:
    assert model_resolution(tiny_sd14) == 64
    assert tiny_sd14.text_encoder.config.num_hidden_layers == 12
    assert tiny_sd14.tokenizer.model_max_length == 77
    assert type(tiny_sd14.scheduler).__name__ == "PNDMScheduler"
    assert isinstance(tiny_sd14.unet, UNet2DConditionModel)


def test_same_seed_same_weights() -> None:
    a = sd14.build_random_pipeline("tiny", seed=3)
    b = sd14.build_random_pipeline("tiny", seed=3)
    for name in ("unet", "vae"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _mlp_final_attn_count(hidden: int = 768, intermediate: int = 3072, layers: int = 12) -> int:
    """mlp-final-attn on SD v1.4's text encoder: fc1 + fc2 of all 12 layers, q/k/v/out of the last."""
    mlp = hidden * intermediate + intermediate + intermediate * hidden + hidden
    attention = 4 * (hidden * hidden + hidden)
    return layers * mlp + attention


def test_fewshot_erase_and_generate_on_tiny_sd14(tiny_sd14: StableDiffusionPipeline, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]
    config = fewshot.FewShotConfig(epochs=1)  # the paper's settings, one epoch (2 steps) to stay fast
    result = fewshot.erase(tiny_sd14, "tench", images, config, progress_bar=False)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert result.info["trainable_parameters"] == _mlp_final_attn_count(96, 384) == 927_744  # the tiny width's share
    erased = result.apply(tiny_sd14)
    prompts = pd.DataFrame(
        {"case_number": [0, 1], "prompt": ["a photo of a tench", "a photo of a church"], "evaluation_seed": [10, 11]}
    )
    paths = generate_to_folder(erased, prompts, tmp_path / "images", GenerationConfig(num_inference_steps=2, batch_size=2), progress_bar=False)
    assert [p.name for p in paths] == ["0.png", "1.png"]
    assert all(Image.open(p).size == (64, 64) for p in paths)


# --- the profile's parameter files ---------------------------------------------------------------


# Paper notebooks with a model but no sd14 path, and why (README, "Stable Diffusion v1.4").
NO_SD14_PATH = {
    "15-erasure-window": "judges every checkpoint of every run with the built-in garment classifier: a stand-in study",
    "16-stopping-rule": "calibrates on notebook 15's built-in windows; its rule (FewShotConfig) runs on SD unchanged",
    "18-faster-sampler": "checks the built-in model's evaluation budget (judged by the garment classifier); SD's 100 PNDM steps fit a GPU",
}
TINY_DIR = NOTEBOOKS_DIR / "params" / "sd14-tiny"


def _paper_notebook_parameters() -> dict[str, dict]:
    import papermill

    return {nb.stem: papermill.inspect_notebook(str(nb)) for nb in sorted(PAPER_DIR.glob("*.ipynb"))}


@pytest.fixture(scope="module")
def notebook_parameters() -> dict[str, dict]:
    return _paper_notebook_parameters()


def test_every_parameter_line_parses(notebook_parameters: dict[str, dict]) -> None:
    """papermill skips a parameter line it cannot parse (a quote in its comment, say): none may be lost."""
    import re

    for src in sorted((NOTEBOOKS_DIR / "src").glob("[0-9][0-9]-*.py")):
        if src.stem not in notebook_parameters:
            continue
        cell = src.read_text().split("# %% tags=parameters\n", 1)[1].split("\n# %%", 1)[0]
        names = re.findall(r"^(\w+)\s*:", cell, flags=re.M)
        assert names == list(notebook_parameters[src.stem]), f"{src.name}: papermill sees {list(notebook_parameters[src.stem])}"


def test_every_model_notebook_has_an_sd14_file_or_a_reason(notebook_parameters: dict[str, dict]) -> None:
    with_model = {name for name, params in notebook_parameters.items() if "model" in params}
    assert with_model, "no paper notebook takes a model parameter"
    profiled = {p.stem for p in PARAMS_DIR.glob("*.yaml")}
    assert with_model - set(NO_SD14_PATH) <= profiled
    assert not profiled & set(NO_SD14_PATH)


@pytest.mark.parametrize("path", sorted(PARAMS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_sd14_yaml_keys_are_notebook_parameters(path: Path, notebook_parameters: dict[str, dict]) -> None:
    values = yaml.safe_load(path.read_text())
    assert path.stem in notebook_parameters, f"{path.name}: no notebook {path.stem}.ipynb"
    unknown = set(values) - set(notebook_parameters[path.stem])
    assert not unknown, f"{path.name}: not parameters of the notebook: {sorted(unknown)}"
    if "model" in notebook_parameters[path.stem]:
        assert hub.resolve(values["model"]) == ("CompVis/stable-diffusion-v1-4", SD14_REVISION)
    expected = {"images_dir": "data/imagenette", "evaluator": "eva02", "fewshot_settings": "paper", "device": "cuda"}
    for key, value in expected.items():  # the paper's setting wherever the notebook has the parameter
        if key in notebook_parameters[path.stem]:
            assert values.get(key) == value, f"{path.name}: {key} should be {value!r}"
    if "num_inference_steps" in values:
        assert (values["num_inference_steps"], values["guidance_scale"]) == (100, 7.5)
    if "classes" in values:
        assert set(values["classes"]) <= set(IMAGENETTE_CLASSES)
    for key in ("results_prefix", "figures_prefix", "work_dir"):
        if key in values:
            assert "sd14" in values[key], f"{key} must not overwrite the built-in model's files"


def test_every_sd14_notebook_runs_in_the_smoke_profile() -> None:
    assert {p.stem for p in TINY_DIR.glob("*.yaml")} == {p.stem for p in PARAMS_DIR.glob("*.yaml")}


@pytest.mark.parametrize("path", sorted(TINY_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_sd14_tiny_overrides_stay_in_build(path: Path, notebook_parameters: dict[str, dict]) -> None:
    values = yaml.safe_load(path.read_text())
    unknown = set(values) - set(notebook_parameters[path.stem])
    assert not unknown, f"{path.name}: not parameters of the notebook: {sorted(unknown)}"
    for key in ("model", "images_dir", "results_prefix", "figures_prefix", "work_dir", "erasure_cache"):
        if key in notebook_parameters[path.stem]:
            assert str(values.get(key, "")).startswith("build/sd14-tiny/"), f"{path.name}: {key} must point into build/sd14-tiny/"


# --- data that cannot ship -----------------------------------------------------------------------


def test_missing_external_data_says_what_to_put_where(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = sd14.EXTERNAL_DATA["coco_prompts"]
    monkeypatch.setitem(sd14.EXTERNAL_DATA, "coco_prompts", sd14.ExternalData(tmp_path / "coco_30k.csv", entry.what, entry.how))
    with pytest.raises(FileNotFoundError, match="coco_30k.csv is missing.*case_number,prompt,evaluation_seed"):
        sd14.require_data("coco_prompts")
    with pytest.raises(ValueError, match="unknown data set"):
        sd14.require_data("laion")


def test_concept_images_are_drawn_by_seed(tmp_path: Path) -> None:
    folder = tmp_path / "tench"
    folder.mkdir()
    for k in range(10):
        Image.new("RGB", (8, 8)).save(folder / f"n01440764_{k:04d}.JPEG")
    (folder / "notes.txt").write_text("not an image")
    a = sd14.concept_image_paths("tench", 4, seed=0, root=tmp_path)
    assert a == sd14.concept_image_paths("tench", 4, seed=0, root=tmp_path) and len(set(a)) == 4
    assert all(p.suffix == ".JPEG" for p in a)
    assert a != sd14.concept_image_paths("tench", 4, seed=1, root=tmp_path)
    with pytest.raises(ValueError, match="10 images; 11"):
        sd14.concept_image_paths("tench", 11, seed=0, root=tmp_path)


def test_webp_concept_images(tmp_path: Path) -> None:
    """One list of image suffixes (data.IMAGE_SUFFIXES): a .webp Imagenette folder is drawn from and loads."""
    from erasure_lib import data, experiment

    assert sd14.IMAGE_SUFFIXES is data.IMAGE_SUFFIXES
    folder = tmp_path / "tench"
    folder.mkdir()
    for k in range(5):
        Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(folder / f"n01440764_{k:04d}.webp", lossless=True)
    paths = sd14.concept_image_paths("tench", 3, seed=0, root=tmp_path)
    assert len(set(paths)) == 3 and all(p.suffix == ".webp" for p in paths)
    images = data.load_concept_images(paths)
    assert [np.asarray(im)[0, 0, 0] for im in images] == [40 * int(p.stem[-1]) for p in paths]
    assert len(data.load_concept_images(folder)) == 5
    assert len(experiment.real_images(str(tmp_path), "tench", 50)) == 5  # the sd14 path's readers too
    assert len(experiment.reference_images(str(tmp_path), 4, seed=0)[0]) == 4


# --- hub access ----------------------------------------------------------------------------------


def test_resolve_pins_and_aliases() -> None:
    assert hub.resolve("sd14") == ("CompVis/stable-diffusion-v1-4", SD14_REVISION)
    assert hub.resolve("CompVis/stable-diffusion-v1-4") == ("CompVis/stable-diffusion-v1-4", SD14_REVISION)
    assert hub.resolve("CompVis/stable-diffusion-v1-4@abc") == ("CompVis/stable-diffusion-v1-4", "abc")
    assert hub.resolve("CompVis/stable-diffusion-v1-4@abc", "def") == ("CompVis/stable-diffusion-v1-4", "def")
    assert hub.resolve("someone/other") == ("someone/other", None)
    assert hub.resolve("clip-l14")[0] == "openai/clip-vit-large-patch14"
    assert hub.resolve("eva02_large_patch14_448.mim_m38m_ft_in22k_in1k")[0].startswith("timm/eva02_large")
    with pytest.warns(UserWarning, match=SD14_REVISION):
        assert hub.resolve("CompVis/stable-diffusion-v1-4", pin=False) == ("CompVis/stable-diffusion-v1-4", None)


def test_offline_load_says_what_to_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """diffusers' own offline error (mocked) becomes one message with the command and the alternative."""

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Cannot load model CompVis/stable-diffusion-v1-4: the model is not fully cached locally")

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", offline)
    with pytest.raises(hub.HubUnavailableError) as info:
        load_pipeline("sd14")
    message = str(info.value)
    assert f"hf download CompVis/stable-diffusion-v1-4 --revision {SD14_REVISION}" in message
    assert f"huggingface-cli download CompVis/stable-diffusion-v1-4 --revision {SD14_REVISION}" in message
    assert "local folder" in message and "not fully cached" in message
    assert isinstance(info.value, OSError)


def test_errors_that_are_not_about_the_hub_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug, not the network")

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", broken)
    with pytest.raises(KeyError):
        load_pipeline("CompVis/stable-diffusion-v1-4@abc")


def test_local_snapshot_never_downloads(tmp_path: Path) -> None:
    """A real hub call in local-files-only mode on an empty cache: a clear error, no network."""
    with pytest.raises(hub.HubUnavailableError, match="hf download openai/clip-vit-large-patch14 --revision"):
        hub.local_snapshot("clip-l14", cache_dir=tmp_path)


def test_sd14_tiny_check_reads_the_notebooks_that_ran(tmp_path: Path) -> None:
    """`make sd14-smoke` with a subset of notebooks checks that subset; by default every one must have run."""
    from tools.sd14_tiny import main

    written = tmp_path / "results" / "fewshot_epochs.csv"
    written.parent.mkdir(parents=True)
    written.write_text("erased_class,epochs\ntench,1\n")
    record = {"notebook": "notebooks/paper/05-images-and-epochs.ipynb"}
    (tmp_path / "results" / "manifest.json").write_text(json.dumps({str(written): record}))
    assert main(["--check", str(tmp_path), "--notebooks", "05-images-and-epochs"]) == 0
    assert main(["--check", str(tmp_path), "--notebooks", "05-images-and-epochs", "11-when-to-stop"]) == 1
    assert main(["--check", str(tmp_path)]) == 1  # the others recorded nothing
    written.write_text("")
    assert main(["--check", str(tmp_path), "--notebooks", "05-images-and-epochs"]) == 1  # an empty file
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--notebooks", "05-images-and-epochs"])

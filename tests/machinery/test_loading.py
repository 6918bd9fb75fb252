"""machinery/loading.py: the processor and its image-size cap, and a --model that cannot work (a hub id offline, a
folder that is not a model, an unsupported architecture, missing or corrupt weights) stopping with one line."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import eval
import fast_grpo
from machinery import loading
import vlm


def test_saved_processor_names_the_standard_class(tiny_model_dir, tmp_path):
    processor = loading.load_processor(tiny_model_dir)
    processor.save_pretrained(tmp_path)
    # so a checkpoint saved here loads with plain AutoProcessor wherever torchvision is installed
    assert json.load(open(tmp_path / "processor_config.json"))["processor_class"] == "Qwen2VLProcessor"


def test_max_pixels_shrinks_images(tiny_model_dir):
    processor = loading.load_processor(tiny_model_dir, max_pixels=56 * 56)
    image = Image.fromarray(np.zeros((112, 112, 3), dtype=np.uint8))
    inputs = vlm.encode(processor, [vlm.chat_prompt(processor, "q", "")], [image])
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]  # 56 / 14 = 4 patches a side


def one_line_error(capsys, main, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: --model "), err
    return err


MAINS = {"fast_grpo.py": lambda argv: fast_grpo.main(argv + ["--max-steps", "1"]),
         "eval.py": lambda argv: eval.main(argv)}


@pytest.mark.parametrize("script", sorted(MAINS))
def test_a_hub_id_that_cannot_be_fetched_offline(script, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 does; never touches the network
    err = one_line_error(capsys, MAINS[script], ["--model", "nobody/no-such-model"])
    assert "nobody/no-such-model: cannot load it from the hub" in err
    assert "offline mode is on" in err and "`hf download nobody/no-such-model --local-dir DIR`" in err


@pytest.mark.parametrize("script", sorted(MAINS))
def test_a_folder_that_is_not_a_model(script, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    err = one_line_error(capsys, MAINS[script], ["--model", str(tmp_path)])
    assert "not a model folder (no config.json)" in err


@pytest.mark.parametrize("script", sorted(MAINS))
def test_an_unsupported_architecture(script, tmp_path, capsys):
    from transformers import LlavaConfig

    LlavaConfig().save_pretrained(tmp_path)  # a LLaVA checkpoint's config.json
    err = one_line_error(capsys, MAINS[script], ["--model", str(tmp_path)])
    assert "architecture 'llava' is not supported" in err and "qwen2_vl" in err


def test_a_model_folder_without_weights(tiny_model_dir, tmp_path, capsys):
    for name in os.listdir(tiny_model_dir):
        if not name.endswith(".safetensors"):
            shutil.copy(os.path.join(tiny_model_dir, name), tmp_path)
    err = one_line_error(capsys, MAINS["fast_grpo.py"], ["--model", str(tmp_path)])
    assert "no weights file" in err


def test_corrupt_weights_give_one_line(tiny_model_dir, tmp_path, capsys):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"not safetensors")
    err = one_line_error(capsys, MAINS["eval.py"], ["--model", str(tmp_path / "model")])
    assert "cannot load it" in err


def test_hub_failures_say_what_went_wrong():
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    def raised_by_transformers(cause):  # transformers wraps the hub's error in an OSError
        try:
            try:
                raise cause
            except Exception as inner:
                raise OSError("org/model is not a local folder and is not a valid model identifier") from inner
        except OSError as outer:
            return outer

    def hub_error(kind):  # without an HTTP response: only the type matters here
        error = kind.__new__(kind)
        Exception.__init__(error, "404 Client Error")
        return error

    assert "no such model on the Hugging Face hub" in loading.hub_failure(
        "org/model", raised_by_transformers(hub_error(RepositoryNotFoundError)))
    assert "gated model" in loading.hub_failure("org/model", raised_by_transformers(hub_error(GatedRepoError)))
    assert "hf download org/model" in loading.hub_failure("org/model", OSError("Connection reset"))


def test_a_local_folder_never_contacts_the_hub(tiny_model_dir, monkeypatch):
    import transformers.utils.hub
    from transformers import AutoConfig

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was contacted for a local folder")

    for name in ("hf_hub_download", "snapshot_download", "hf_api"):  # transformers' own handles on the hub
        monkeypatch.setattr(transformers.utils.hub, name, no_network)
    with pytest.raises(OSError) as error:  # the patch does catch a hub id (transformers wraps what it raised)
        AutoConfig.from_pretrained("nobody/no-such-model")
    assert "the hub was contacted" in str(error.value.__cause__ or error.value.__context__)
    assert loading.check_model(tiny_model_dir) == "qwen2_vl"
    loading.load_processor(tiny_model_dir)
    loading.load_model(tiny_model_dir)

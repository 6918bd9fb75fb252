"""LoRA (machinery/lora.py): the disabled-adapter reference, which weights train, the merged checkpoint, exact
resume; and trainer states that cannot run code (checkpoints.load_trainer_state)."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from data_loading import loader
from demo import tiny_model
from machinery import checkpoints, loading, lora
import methods
import vlm
from helpers import run, weights


def one_prompt(processor):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 84, 3), dtype=np.uint8))
    return vlm.encode(processor, [vlm.chat_prompt(processor, "What is 3+4?", methods.instruction("fast"))], [image])


def logprobs_of(model, processor, inputs, completion):
    ids, mask = completion
    return vlm.token_logprobs(model, inputs, ids, mask, 1.0, vlm.vision_token_ids(model, processor))


def test_adapters_off_is_the_base_model_and_adapters_on_is_not(tiny_model_dir):
    processor, base = loading.load_processor(tiny_model_dir), loading.load_model(tiny_model_dir)
    torch.manual_seed(0)
    model = lora.add_adapters(loading.load_model(tiny_model_dir), 4, 8, lora.DEFAULT_TARGETS)
    inputs = one_prompt(processor)
    ids = torch.tensor([[5, 9, 17, 3]])
    completion = (ids, torch.ones_like(ids, dtype=torch.bool))
    base_logp = logprobs_of(base, processor, inputs, completion)
    assert torch.allclose(logprobs_of(model, processor, inputs, completion), base_logp, atol=1e-6)  # B = 0 at start
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    assert (logprobs_of(model, processor, inputs, completion) - base_logp).abs().max() > 1e-3
    with lora.adapters_off(model):
        assert torch.allclose(logprobs_of(model, processor, inputs, completion), base_logp, atol=1e-6)
    # only the adapters train: r x (in + out) per target Linear
    trainable = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)


def trained_adapters(model_dir):
    """The tiny model with rank-4 adapters whose B is random (as if trained: B = 0 would merge to the base)."""
    torch.manual_seed(0)
    model = lora.add_adapters(loading.load_model(model_dir), 4, 8, lora.DEFAULT_TARGETS)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    return model


def test_chunked_logprobs_and_adapter_gradients_equal_one_chunks(tiny_model_dir, monkeypatch):
    """Under LoRA (a PEFT model: the decoder hook and the output layer reached through its wrapper) a logits budget of
    3 positions a chunk gives the log-probs and the adapters' gradients of one chunk."""
    processor = loading.load_processor(tiny_model_dir)
    model = trained_adapters(tiny_model_dir)
    inputs = vlm.take_rows(one_prompt(processor), [0, 0])
    ids = torch.tensor([[5, 9, 17, 3, 8, 11, 2], [7, 7, 12, 4, 2, 0, 0]])
    completion = (ids, ids != 0)

    def logprobs_and_gradients():
        model.zero_grad(set_to_none=True)
        logp = logprobs_of(model, processor, inputs, completion)
        torch.where(completion[1], logp, 0.0).sum().backward()
        return logp.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    whole, whole_grads = logprobs_and_gradients()
    monkeypatch.setattr(vlm, "LOGITS_CHUNK_BYTES", 4 * 2 * model.config.text_config.vocab_size * 3)
    chunked, chunked_grads = logprobs_and_gradients()
    assert torch.allclose(chunked, whole, atol=1e-6)
    assert whole_grads.keys() == chunked_grads.keys() and all(".lora_" in name for name in whole_grads)
    for name, grad in whole_grads.items():
        assert torch.allclose(chunked_grads[name], grad, atol=1e-6, rtol=1e-5), name


def test_targets_are_matched_under_the_language_model_only(tmp_path):
    folder = tiny_model.build_tiny_model(str(tmp_path / "qwen2_5"), seed=0, arch="qwen2_5_vl")
    model = loading.load_model(folder)
    vision_mlp = [name for name, m in model.named_modules() if "visual" in name and name.endswith("gate_proj")]
    assert vision_mlp  # Qwen2.5-VL's vision MLP uses the same names as the decoder's
    names = lora.target_modules(model, "gate_proj,up_proj")
    assert names and all("language_model" in name for name in names)
    assert len(names) == 2 * model.config.text_config.num_hidden_layers
    with pytest.raises(lora.LoraError, match="no Linear module of the language model is named fc1; its Linear "
                                              "modules are named down_proj, gate_proj, k_proj"):
        lora.target_modules(model, "q_proj,fc1")  # fc1: a vision-tower name (Qwen2-VL), absent from the decoder


@pytest.fixture(scope="module")
def lora_run(warm_model_dir, dataset, tmp_path_factory):
    """4 LoRA steps on the warm tiny model, checkpoints at 2 and 4; then the same run resumed from checkpoint-2."""
    straight, resumed = tmp_path_factory.mktemp("lora-straight"), tmp_path_factory.mktemp("lora-resumed")
    metrics = run(warm_model_dir, dataset, straight, "--lora-rank", "4", "--method", "grpo", steps=4)
    shutil.copytree(straight / "checkpoint-2", resumed / "checkpoint-2")
    for name, lines in (("metrics.jsonl", 2), ("samples.jsonl", 2 * 2)):
        with open(straight / name) as f:
            (resumed / name).write_text("".join(f.readlines()[:lines]))
    again = run(warm_model_dir, dataset, resumed, "--lora-rank", "4", "--method", "grpo", "--resume", "auto", steps=4)
    return dict(straight=straight, resumed=resumed, metrics=metrics, again=again)


def test_lora_trains_only_the_language_model_targets_and_saves_a_merged_model(lora_run, warm_model_dir):
    checkpoint = lora_run["straight"] / "checkpoint-4"
    assert not (checkpoint / "adapter_config.json").exists()  # else transformers would load base + adapter
    assert (checkpoint / lora.ADAPTER_DIR / "adapter_config.json").exists()
    before, after = weights(warm_model_dir), weights(checkpoint)  # from_pretrained, no PEFT involved
    moved = {key for key in before if not torch.equal(before[key], after[key])}
    assert moved and all("language_model" in key and key.rsplit(".", 2)[-2] in lora.DEFAULT_TARGETS.split(",")
                         for key in moved)
    assert not any("visual" in key for key in moved)


def test_the_merged_checkpoint_computes_what_the_adapter_model_computes(lora_run, warm_model_dir):
    from peft import PeftModel

    checkpoint = lora_run["straight"] / "checkpoint-4"
    processor = loading.load_processor(str(checkpoint))
    merged = loading.load_model(str(checkpoint))
    adapted = PeftModel.from_pretrained(loading.load_model(warm_model_dir), str(checkpoint / lora.ADAPTER_DIR))
    inputs, ids = one_prompt(processor), torch.tensor([[5, 9, 17, 3, 11]])
    completion = (ids, torch.ones_like(ids, dtype=torch.bool))
    merged_logp, adapted_logp = (logprobs_of(m, processor, inputs, completion) for m in (merged, adapted))
    base_logp = logprobs_of(loading.load_model(warm_model_dir), processor, inputs, completion)
    assert (adapted_logp - base_logp).abs().max() > 1e-6  # the adapter learned something
    assert torch.allclose(merged_logp, adapted_logp, atol=1e-5)


def test_the_merged_checkpoint_is_written_a_shard_at_a_time_as_save_pretrained_writes_it(tiny_model_dir, tmp_path,
                                                                                         monkeypatch):
    """lora.save computes the merged weights a file at a time: in one file or in several (with save_pretrained's
    index), the same key names, config and weights as save_pretrained of the whole merged state dict."""
    model = trained_adapters(tiny_model_dir)
    weights, merge = lora.merged_weights(model)
    whole = {key: merge(key) for key in weights}
    model.get_base_model().save_pretrained(tmp_path / "reference", state_dict=whole)
    (tmp_path / "one").mkdir()
    lora.save(model, str(tmp_path / "one"))
    monkeypatch.setattr(lora, "SHARD_BYTES", 50_000)
    (tmp_path / "shards").mkdir()
    lora.save(model, str(tmp_path / "shards"))
    index = json.load(open(tmp_path / "shards" / "model.safetensors.index.json"))
    assert len(set(index["weight_map"].values())) > 3
    reference_keys = sorted(load_file(tmp_path / "reference" / "model.safetensors"))
    assert sorted(load_file(tmp_path / "one" / "model.safetensors")) == reference_keys == sorted(index["weight_map"])
    assert (tmp_path / "one" / "config.json").read_text() == (tmp_path / "reference" / "config.json").read_text()
    expected = loading.load_model(str(tmp_path / "reference")).state_dict()
    for folder in ("one", "shards"):
        saved = loading.load_model(str(tmp_path / folder)).state_dict()
        assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in expected), folder
    live = model.get_base_model().state_dict()  # the adapters were merged into the file, not into the model
    assert any(not torch.equal(whole[k.replace(".base_layer", "")], v) for k, v in live.items() if ".base_layer." in k)


def test_a_lora_run_resumes_exactly(lora_run):
    assert [m["step"] for m in lora_run["again"]] == [1, 2, 3, 4]
    for a, b in zip(lora_run["metrics"], lora_run["again"]):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    for name in ("model.safetensors", f"{lora.ADAPTER_DIR}/adapter_model.safetensors"):
        straight = load_file(lora_run["straight"] / "checkpoint-4" / name)
        resumed = load_file(lora_run["resumed"] / "checkpoint-4" / name)
        assert all(torch.equal(straight[key], resumed[key]) for key in straight), name


def test_resume_never_unpickles(lora_run, warm_model_dir, dataset, tmp_path, monkeypatch):
    shutil.copytree(lora_run["straight"] / "checkpoint-2", tmp_path / "checkpoint-2")
    real_load, calls = torch.load, []

    def load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    run(warm_model_dir, dataset, tmp_path, "--lora-rank", "4", "--method", "grpo", "--resume", "auto", steps=4)
    assert calls == [True]


def error_of(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("flags, message", [
    (["--lora-rank", "-1"], "--lora-rank must be 0 (no LoRA) or more"),
    (["--lora-rank", "4", "--lora-targets", "qkv"], "--lora-targets qkv: no Linear module of the language model "
                                                    "is named qkv; its Linear modules are named down_proj"),
])
def test_bad_lora_settings_give_one_line(flags, message, warm_model_dir, dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, *flags, steps=1)
    assert exit_info.value.code == 2
    assert message in error_of(capsys)


def test_resume_with_another_lora_rank_is_refused(lora_run, warm_model_dir, dataset, tmp_path, capsys):
    shutil.copytree(lora_run["straight"] / "checkpoint-4", tmp_path / "checkpoint-4")
    with pytest.raises(SystemExit) as exit_info:
        run(warm_model_dir, dataset, tmp_path, "--lora-rank", "8", "--method", "grpo", "--resume", "auto", steps=4)
    assert exit_info.value.code == 2
    assert "resumed with different arguments (--lora-rank was 4, now 8)" in error_of(capsys)


class Exploit:
    """What a hostile trainer_state.pt could hold: unpickling it would call os.system."""

    def __reduce__(self):
        return os.system, ("echo pwned > /tmp/fast-grpo-pwned",)


def forged_checkpoint(source, folder, state, manifest_format):
    """A copy of checkpoint `source` whose trainer_state.pt is `state`, with a manifest of `manifest_format`."""
    shutil.copytree(source, folder)
    torch.save(state, folder / "trainer_state.pt")
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    manifest["files"]["trainer_state.pt"] = os.path.getsize(folder / "trainer_state.pt")
    if manifest_format is None:
        manifest.pop("format")
    else:
        manifest["format"] = manifest_format
    (folder / checkpoints.MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_a_trainer_state_with_a_pickled_object_is_refused_without_running_it(lora_run, tmp_path):
    source = lora_run["straight"] / "checkpoint-2"
    state = torch.load(source / "trainer_state.pt", weights_only=True)
    forged = forged_checkpoint(source, tmp_path / "checkpoint-2", dict(state, rng=Exploit()), 2)
    with pytest.raises(loader.DataError, match="not a fast-grpo trainer state"):
        checkpoints.load_trainer_state(str(forged))
    assert not os.path.exists("/tmp/fast-grpo-pwned")
    with pytest.raises(pickle.UnpicklingError):  # what the check relies on: torch refuses the object
        torch.load(forged / "trainer_state.pt", weights_only=True)


def test_a_checkpoint_of_the_earlier_format_is_refused_in_one_line(lora_run, tmp_path):
    source = lora_run["straight"] / "checkpoint-2"
    state = torch.load(source / "trainer_state.pt", weights_only=True)
    old = dict(step=state["step"], optimizer=state["optimizer"], args=json.loads(state["args"]),
               rng=dict(state["rng"], numpy=np.random.get_state()))  # the earlier format: numpy arrays inside
    forged = forged_checkpoint(source, tmp_path / "checkpoint-2", old, None)
    with pytest.raises(loader.DataError, match="written by an earlier version of fast-grpo .* start a new run with "
                                             "--model"):
        checkpoints.load_trainer_state(str(forged))


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    np.random.seed(5)
    torch.manual_seed(5)
    torch.save(checkpoints.rng_states(), tmp_path / "rng.pt")
    expected = (np.random.random(3), torch.rand(3))
    checkpoints.set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert np.array_equal(np.random.random(3), expected[0]) and torch.equal(torch.rand(3), expected[1])

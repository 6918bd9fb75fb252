"""LoRA with PEFT: train low-rank adapters on the language model's Linear layers, keep everything else frozen.

    python fast_grpo.py --model Qwen/Qwen2.5-VL-7B-Instruct --data train.jsonl --lora-rank 64

Why it fits where full fine-tuning does not (docs/scaling.md): the frozen weights need no gradient and no AdamW
state, and the KL term's reference is the policy with its adapters switched off (`adapters_off`), so there is no
second copy of the model. Adapters go only under the language model: Qwen2.5-VL's vision MLP uses the same names
(gate_proj, up_proj, down_proj), and the vision tower stays frozen.

A checkpoint holds the merged model (base + scale * B A, loadable with from_pretrained and no PEFT) and the
adapter in `adapter/` (loadable with PEFT's PeftModel.from_pretrained); `--resume` rebuilds base + adapter.
"""

import contextlib
import json
import os
import warnings

import torch
from safetensors.torch import load_file, save_file

DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
ADAPTER_DIR = "adapter"  # checkpoint-N/adapter/: PEFT's adapter_config.json + adapter_model.safetensors


class LoraError(ValueError):
    """A --lora-* setting that cannot work; str() is one line."""


def language_model(model):
    """The language model's decoder, not the vision tower: `get_decoder()`, which answers for every family
    (Qwen-VL's and Gemma 3's model.model.language_model, Idefics3's model.model.text_model, a causal LM's
    model.model; docs/model-families.md)."""
    found = model.get_decoder() if hasattr(model, "get_decoder") else None
    if found is None or found is model or not hasattr(found, "layers"):
        raise LoraError(f"{type(model).__name__} has no decoder (get_decoder): LoRA targets cannot be placed")
    return found


def target_modules(model, targets):
    """Full names of the Linear modules under the language model whose own name is one of `targets`."""
    decoder, wanted = language_model(model), {t.strip() for t in targets.split(",") if t.strip()}
    under_decoder = {id(module) for module in decoder.modules()}
    names, linear_names = [], set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and id(module) in under_decoder:
            linear_names.add(name.rsplit(".", 1)[-1])
            if name.rsplit(".", 1)[-1] in wanted:
                names.append(name)
    missing = sorted(wanted - linear_names)
    if missing or not names:
        raise LoraError(f"--lora-targets {targets}: no Linear module of the language model is named "
                        f"{', '.join(missing) or targets}; its Linear modules are named "
                        f"{', '.join(sorted(linear_names))}")
    return names


def add_adapters(model, rank, alpha, targets):
    """The model with fresh LoRA adapters (A random, B zero: it computes what the base model computes) on the
    language model's `targets`; only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none",
                        target_modules=target_modules(model, targets))
    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question (is_gradient_checkpointing)
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def is_lora(model):
    return hasattr(unwrap(model), "disable_adapter")


def unwrap(model):
    """The PEFT model inside DistributedDataParallel (or the model itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def adapters_off(model):
    """Context in which the LoRA policy computes as its frozen base model: the KL reference, without a copy."""
    return unwrap(model).disable_adapter() if is_lora(model) else contextlib.nullcontext()


SHARD_BYTES = 2**30  # the merged checkpoint is written in files of about this size, one at a time


def merged_weights(model, state_dict=None):
    """(weights, merge): the base model's weights in its own key names, the live tensors (no copy), and `merge(key)`,
    that weight with its adapter merged in, W + (alpha / r) B A (the weight itself where no adapter is on it): a
    merged weight exists only while it is written. `state_dict`: the LoRA model's full state dict (under FSDP,
    gathered), else the model's own. Nothing in the model changes (merging in place and back would round the
    weights), so training continues bit for bit."""
    peft_model = unwrap(model)
    config = peft_model.peft_config["default"]
    scale = config.lora_alpha / config.r
    if state_dict is None:
        state_dict = peft_model.get_base_model().state_dict()
    else:  # keys of the PEFT model itself: base_model.model.<the base model's key>
        state_dict = {key.removeprefix("base_model.model."): value for key, value in state_dict.items()}
    weights, adapted = {}, {}  # adapted: a merged weight's key -> its layer's name
    for key, value in state_dict.items():
        if ".lora_" in key:
            continue
        if ".base_layer." in key:
            layer, _, param = key.rpartition(".base_layer.")
            key = f"{layer}.{param}"
            if param == "weight":
                adapted[key] = layer
        weights[key] = value

    def merge(key):
        if key not in adapted:
            return weights[key]
        lora_a, lora_b = (state_dict[f"{adapted[key]}.lora_{ab}.default.weight"] for ab in "AB")
        with torch.no_grad():
            return weights[key] + ((lora_b @ lora_a) * scale).to(weights[key].dtype)

    return weights, merge


def save(model, folder, state_dict=None):
    """folder/: the merged model (from_pretrained-loadable without PEFT); folder/adapter/: the adapter alone.
    `state_dict`: the LoRA model's full state dict, when it had to be gathered (FSDP). The merged weights are
    computed and written about SHARD_BYTES at a time, in the files, key names and format save_pretrained writes
    (safetensors shards and their index), so saving never holds a second copy of the model."""
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    peft_model = unwrap(model)
    base = peft_model.get_base_model()
    weights, merge = merged_weights(peft_model, state_dict)
    keys = list(remove_tied_weights_from_state_dict(dict(weights), base))  # a tied head is saved once
    shards, size = [[]], 0
    for key in keys:
        nbytes = weights[key].numel() * weights[key].element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    weight_map = {}
    for number, shard in enumerate(shards, 1):
        name = "model.safetensors" if len(shards) == 1 else f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        tensors = revert_weight_conversion(base, {key: merge(key).contiguous() for key in shard})  # saved names
        save_file(tensors, os.path.join(folder, name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        del tensors  # this shard's merged weights
    if len(shards) > 1:
        total = sum(weights[key].numel() * weights[key].element_size() for key in keys)
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump(dict(metadata=dict(total_size=total), weight_map=weight_map), f, indent=2, sort_keys=True)
    base.config.architectures = [type(base).__name__]
    base.config.save_pretrained(folder)
    base.generation_config.save_pretrained(folder)
    peft_model.save_pretrained(os.path.join(folder, ADAPTER_DIR), state_dict=state_dict)


def load_adapter_weights(model, checkpoint):
    """Put the adapter weights of checkpoint/adapter/ into `model` (built by add_adapters with the same settings)."""
    from peft import set_peft_model_state_dict

    path = os.path.join(checkpoint, ADAPTER_DIR, "adapter_model.safetensors")
    if not os.path.isfile(path):
        raise LoraError(f"{checkpoint}: no {ADAPTER_DIR}/adapter_model.safetensors: not a checkpoint of a LoRA run")
    result = set_peft_model_state_dict(unwrap(model), load_file(path))
    if getattr(result, "unexpected_keys", None):
        raise LoraError(f"{checkpoint}: its adapter does not fit this model ({result.unexpected_keys[0]} ...)")
    return model

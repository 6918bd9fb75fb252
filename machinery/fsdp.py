"""FSDP2 sharding (`--fsdp` under torchrun): each process holds 1/N of the weights, gradients and AdamW state.

    torchrun --nproc_per_node 8 fast_grpo.py --fsdp --model Qwen/Qwen2.5-VL-7B-Instruct --data train.jsonl

PyTorch's own engine, `torch.distributed.fsdp.fully_shard`, on each decoder layer and the root (with the vision tower)
(the policy, and the frozen reference the same way; with LoRA the reference is the policy's adapters switched
off). On CUDA the weights stay float32 and compute runs in bfloat16, with gradients reduced in float32
(MixedPrecisionPolicy); on CPU everything is float32. What the method computes is the one-process method: the
per-question arrays are gathered exactly as under DDP (machinery/distributed.py), and the gradient of a micro-batch is
weighted by its share of the whole batch, then averaged over processes by the reduce-scatter.

Sampling: `generate` runs one token at a time, and re-gathering every layer for every token would dominate the
step, so `gathered` unshards the whole model for the sampling phase (each process then holds every weight in the
compute dtype: 2 bytes per parameter in bfloat16, 15 GB at 7B) and reshards it afterwards. Checkpoints: the full
state dict is gathered into process 0's CPU memory for `save_pretrained`; each process writes its own optimizer
shard as plain tensors (optimizer-<rank>.pt, loadable with weights_only=True).
"""

import contextlib

import torch
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor

from machinery import lora


def shard(model, compute_dtype):
    """fully_shard each decoder layer, then the root module (the vision tower, embeddings and head); returns the
    (same) model."""
    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32) \
        if compute_dtype != torch.float32 else MixedPrecisionPolicy()
    base = lora.unwrap(model)
    base = base.get_base_model() if lora.is_lora(base) else base
    for layer in lora.language_model(base).layers:
        fully_shard(layer, mp_policy=policy)
    # The vision tower stays in the root's group: a micro-batch of text-only questions skips it, and a group of its
    # own would then be gathered on some processes and not on others (a collective mismatch). For the same reason
    # a parameter without a gradient on one process takes part in the reduce-scatter with zeros.
    fully_shard(model, mp_policy=policy)
    model.set_reduce_scatter_unused_params(True)
    # generate is called on the root but is not its forward: register it, so that it runs the root's hooks
    # (otherwise: "FSDP requires running forward through the root module first")
    register_fsdp_forward_method(model, "generate")
    return model


def is_sharded(model):
    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def gathered(model):
    """Inside: every FSDP module of `model` unsharded and kept so across forward passes (for generate); after:
    resharded. A no-op for a model that is not sharded."""
    modules = [m for m in model.modules() if isinstance(m, FSDPModule)] if is_sharded(model) else []
    for module in modules:
        module.unshard()
        module.set_reshard_after_forward(False, recurse=False)
    try:
        yield model
    finally:
        for module in modules:  # FSDP's own defaults again: the root keeps its weights from forward to backward,
            module.set_reshard_after_forward(module is not model, recurse=False)  # (vlm.token_logprobs uses them)
            module.reshard()


def full_state_dict(model):
    """The whole model's state dict on process 0's CPU (an empty dict on the others); every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def optimizer_shard(optimizer):
    """This process's optimizer state as plain tensors: each DTensor replaced by its local shard (`sharded` names
    which entries were DTensors, for load_optimizer_shard)."""
    state = optimizer.state_dict()
    local, sharded = {}, {}
    for index, entries in state["state"].items():
        local[index] = {key: value.to_local() if isinstance(value, DTensor) else value
                        for key, value in entries.items()}
        sharded[index] = [key for key, value in entries.items() if isinstance(value, DTensor)]
    return dict(state=local, sharded=sharded, param_groups=state["param_groups"])


def load_optimizer_shard(optimizer, shard_state):
    """Inverse of optimizer_shard, on an optimizer over the same sharded parameters."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for index, entries in shard_state["state"].items():
        param = params[index]
        state[index] = {key: DTensor.from_local(value.to(param.device), param.device_mesh, param.placements,
                                                shape=param.shape, stride=param.stride())
                        if key in shard_state["sharded"][index] else value for key, value in entries.items()}
    optimizer.load_state_dict(dict(state=state, param_groups=shard_state["param_groups"]))

"""Several processes (one per GPU) with torchrun, data-parallel the way nanoGPT does it.

    torchrun --nproc_per_node 4 fast_grpo.py --model Qwen/Qwen2-VL-2B-Instruct --data train.jsonl

Each process samples G responses for its share of the step's questions. What the method defines over the whole
batch (the curriculum's filter, theta = the 80th percentile of S_d, L_avg, the rank-normalised image complexity,
the logged metrics) is computed on every process from all processes' groups, gathered, so N processes run the
same method as one. DistributedDataParallel averages the gradients, so every process takes the same optimizer
step and the weights stay identical. Process 0 alone writes logs and checkpoints.

Started without torchrun (no WORLD_SIZE in the environment), every function here does nothing.
"""

import contextlib
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def setup(device):
    """Join torchrun's process group: NCCL with one GPU per process, or gloo on CPU. Returns the device to use."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    # NCCL for the GPUs' tensors, gloo for the few CPU ones (gathered numbers, the RNG states)
    dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return device


def active():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def my_share(items):
    """This process's contiguous share of a step's questions (the batch size is a multiple of the process count)."""
    per_process = len(items) // world_size()
    return items[rank() * per_process:(rank() + 1) * per_process]


def gather(array):
    """Every process's rows of `array`, concatenated in process order: the whole batch, on every process."""
    if not active():
        return array
    parts = [None] * world_size()
    dist.all_gather_object(parts, array)
    return np.concatenate(parts) if isinstance(array, np.ndarray) else [item for part in parts for item in part]


def whole_batch(*arrays):
    """The seam between one process and the batch: each array (this process's questions) -> the whole batch's, in
    process order. Algorithm 1 defines the filter, theta, L_avg and the ranks of H_img over the whole batch."""
    return tuple(gather(array) for array in arrays)


def my_questions(num_questions):
    """The positions of this process's `num_questions` questions in the whole batch (whole_batch's order)."""
    return slice(rank() * num_questions, (rank() + 1) * num_questions)


def rows_for_update(rows, responses, rollout, group_size, equal_rows=False):
    """What this process's policy update gets, given the rows of its kept responses (the step decides which): the
    `responses` dict (completion_ids, response_mask, advantages, kl_coef) with `total_rows` and `total_tokens`, the
    rows and response tokens of the whole update, every process's (each micro-batch's loss is weighted by its share
    of those), and padded for torchrun where it must be. Returns (rows, responses).

    DDP needs a backward pass from every process, so a process that kept no group while others did gets one group
    with an empty response mask, zero advantages and zero KL coefficients: it runs the passes and teaches nothing.
    `equal_rows` (FSDP, whose every forward pass gathers weights with all processes): every process is padded with
    such rows to the largest number of rows, so that all run the same number of micro-batches. A padded row adds 0
    to a micro-batch's loss, and the shares (of the totals, which count real rows only) keep the gradient exact.
    """
    responses = dict(responses, total_rows=total(len(rows)), total_tokens=total(responses["response_mask"].sum()))
    width = int(maximum(len(rows))) if equal_rows else max(len(rows), group_size)
    padding = np.arange(width - len(rows)) % len(rollout["response_mask"]) if len(rows) < width and (
        equal_rows or len(rows) == 0) else np.arange(0)
    if len(padding):
        mask = rollout["response_mask"]
        responses.update(completion_ids=torch.cat([responses["completion_ids"], rollout["completion_ids"][padding]]),
                         response_mask=torch.cat([responses["response_mask"], torch.zeros_like(mask[padding])]),
                         advantages=torch.cat([responses["advantages"], torch.zeros(len(padding))]),
                         kl_coef=torch.cat([responses["kl_coef"], torch.zeros(len(padding))]))
        rows = np.concatenate([rows, padding])
    return rows, responses


def maximum(value):
    """The largest of a number over all processes."""
    if not active():
        return float(value)
    tensor = torch.tensor(float(value), dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor)


def total(value):
    """The sum of a number over all processes."""
    if not active():
        return float(value)
    tensor = torch.tensor(float(value), dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor)


def any_process(flag):
    """True on every process if it is true on any (so that all of them stop, or save, together)."""
    return total(bool(flag)) > 0 if active() else bool(flag)


def wrap(model, text_only_rows=False):
    """The model as DistributedDataParallel sees it for the update (forward and backward); the model itself when
    there is one process. Sampling, log-probs of the reference and saving use the unwrapped model.
    `text_only_rows`: some questions have no image, so a micro-batch may leave the vision tower without gradients;
    DDP must then look for unused parameters (find_unused_parameters)."""
    if not active():
        return model
    device_ids = [model.device.index] if model.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=text_only_rows)


def syncing(model, last):
    """Gradients are averaged once per optimizer step, on the last micro-batch's backward pass; with
    find_unused_parameters on every micro-batch's (a parameter unused in the last one would otherwise carry the
    others' gradients unaveraged)."""
    if last or not isinstance(model, DistributedDataParallel) or model.find_unused_parameters:
        return contextlib.nullcontext()
    return model.no_sync()


def barrier():
    if active():
        dist.barrier()


def cleanup():
    if active():
        dist.destroy_process_group()

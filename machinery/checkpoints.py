"""Checkpoints of a training run: a save_pretrained folder plus what --resume needs (optimizer, step, RNG states,
arguments), written so that a kill or a full disk at any moment leaves the previous checkpoint usable; finding
the newest complete one; checking that a resumed run is the same run.

trainer_state.pt holds tensors, numbers, strings, lists and dicts only (the arguments as JSON, the RNG states as
tensors and lists) and is loaded with torch.load(weights_only=True): resuming from a checkpoint someone else wrote
cannot run code. A state file that holds pickled objects is refused with one line.
"""

import dataclasses
import json
import os
import pickle
import random
import shutil
import time

import numpy as np
import torch
from safetensors import SafetensorError

from data_loading import loader
from machinery import distributed, fsdp, lora

MANIFEST = "checkpoint.json"  # written last: its presence and its file sizes say the checkpoint is complete
REQUIRED_FILES = ("config.json", "trainer_state.pt")  # what a checkpoint from before manifests must hold
STATE_FORMAT = 2  # 1 (no "format" in the manifest): trainer_state.pt held numpy arrays, loaded with pickle
# A resumed run must be the same run: same model (also the KL reference), data, schedule, seed and adapters.
SAME_RUN_KEYS = ("model", "data", "method", "max_steps", "batch_size", "group_size", "lr", "seed", "lora_rank",
                 "lora_alpha", "lora_targets", "fsdp",
                 # what decides which rows are examples: another value would change the questions of each step
                 "skip_bad_examples", "image_dir", "question_key", "answer_key", "image_key", "max_images",
                 # the learning rate of each step is a function of these two (and of lr and max_steps)
                 "lr_scheduler", "warmup_ratio",
                 # another task's reward would make another run
                 "reward_fn")
# What a checkpoint written before a key of SAME_RUN_KEYS existed ran with: such a checkpoint still resumes.
BEFORE_THE_KEY = dict(lr_scheduler="constant", warmup_ratio=0.0, reward_fn=None)


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the message says which and what is still intact."""


def rng_states():
    """Python's, numpy's and torch's random states as tuples, lists, numbers and tensors (weights_only-loadable)."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states = dict(python=random.getstate(), numpy=[kind, keys.tolist(), position, has_gauss, cached_gauss],
                  torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    kind, keys, position, has_gauss, cached_gauss = states["numpy"]
    random.setstate(states["python"])
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(output_dir, step, policy, processor, optimizer, args, rng=None):
    """checkpoint-<step>/: model + processor (from_pretrained-loadable), trainer_state.pt, and checkpoint.json.

    Everything is written to checkpoint-<step>.tmp/, the manifest (every file's size) last, and the folder is then
    renamed: a kill leaves a .tmp folder that --resume auto skips. A failed write (a full disk) removes the .tmp
    folder and raises CheckpointError; older checkpoints are never touched. `rng`: the RNG states to store
    (default: now). Process 0 calls it alone, except under FSDP (machinery/fsdp.py), where every process does: the full
    weights are gathered to process 0, which writes the model, and each process writes its optimizer shard
    (optimizer-<rank>.pt); the processes agree after each part, so they finish or fail together.
    """
    final = os.path.join(output_dir, f"checkpoint-{step}")
    tmp = final + ".tmp"
    sharded, main = fsdp.is_sharded(policy), distributed.rank() == 0
    model_state = fsdp.full_state_dict(policy) if sharded else None  # a collective: every process takes part

    def write_model_and_state():
        if lora.is_lora(policy):  # the merged model at the top, the adapter in adapter/
            lora.save(policy, tmp, model_state)
        else:
            policy.save_pretrained(tmp, **({} if model_state is None else dict(state_dict=model_state)))
        processor.save_pretrained(tmp)
        torch.save(dict(format=STATE_FORMAT, step=step, optimizer=None if sharded else optimizer.state_dict(),
                        rng=rng or rng_states(), args=json.dumps(dataclasses.asdict(args))),
                   os.path.join(tmp, "trainer_state.pt"))

    def finish():
        pause = os.environ.get("FAST_GRPO_TEST_PAUSE_IN_SAVE", "")  # tests only, "STEP:SECONDS": a window to kill in
        if pause.split(":")[0] == str(step):
            print(f"saving {tmp}: paused", flush=True)
            time.sleep(float(pause.split(":")[1]))
        sizes = {os.path.relpath(os.path.join(folder, name), tmp): os.path.getsize(os.path.join(folder, name))
                 for folder, _, names in sorted(os.walk(tmp)) for name in sorted(names)}
        with open(os.path.join(tmp, MANIFEST), "w") as f:
            json.dump(dict(step=step, format=STATE_FORMAT, files=sizes), f, indent=1)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    error = attempt(lambda: (shutil.rmtree(tmp, ignore_errors=True), os.makedirs(tmp))) if main else None
    if sharded:
        error = agree(error)  # the .tmp folder exists before the others write into it
        if error is None:
            error = agree(attempt(lambda: torch.save(fsdp.optimizer_shard(optimizer),
                                                     os.path.join(tmp, f"optimizer-{distributed.rank()}.pt"))))
    for part in (write_model_and_state, finish):
        if error is None:
            error = attempt(part) if main else None
            error = agree(error) if sharded else error
    if error is not None:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = find_checkpoint("auto", output_dir, report=False)
        raise CheckpointError(f"could not write checkpoint-{step} in {output_dir} ({error}); "
                              + (f"{previous} is intact" if previous else "no earlier checkpoint exists")
                              + "; free some space, then continue with --resume auto")
    return final


def attempt(write):
    """Run write(); the error of a failed write (a full disk: torch.save reports it as a RuntimeError), or None."""
    try:
        write()
    except (OSError, RuntimeError, SafetensorError) as error:
        return error
    return None


def agree(error):
    """Every process learns whether any failed (a collective): its own error, or one naming the other process."""
    if distributed.any_process(error is not None):
        return error or OSError("another process could not write its part of the checkpoint")
    return None


def load_optimizer_shard(checkpoint):
    """This process's optimizer shard of an FSDP checkpoint (plain tensors, weights_only)."""
    path = os.path.join(checkpoint, f"optimizer-{distributed.rank()}.pt")
    if not os.path.isfile(path):
        raise loader.DataError(checkpoint, "not a checkpoint of this --fsdp run",
                               f"no optimizer-{distributed.rank()}.pt: written without --fsdp, or by fewer processes")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # fsdp.load_optimizer_shard places it
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise loader.DataError(checkpoint, "not a fast-grpo trainer state", f"{os.path.basename(path)}: "
                               + (str(error).strip().splitlines() or [type(error).__name__])[0][:200]) from None


def checkpoint_problem(path):
    """None if `path` is a complete checkpoint; otherwise what is wrong with it, in a few words.

    Complete = every file its manifest lists exists, is readable, and has the size it had when it was written (a
    truncated file is caught); a checkpoint from before manifests needs config.json and trainer_state.pt.
    """
    path = os.path.normpath(path)  # "checkpoint-4.tmp/", as tab completion writes it, is still a .tmp folder
    if path.endswith(".tmp"):
        return "an unfinished save (the run was killed while writing it)"
    manifest = os.path.join(path, MANIFEST)
    try:
        with open(manifest) as f:
            expected = json.load(f)["files"]
    except FileNotFoundError:
        expected = {name: None for name in REQUIRED_FILES}
    except (OSError, ValueError, KeyError) as error:
        return f"unreadable {MANIFEST} ({error})"
    for name, size in expected.items():
        file = os.path.join(path, name)
        try:
            with open(file, "rb") as f:
                f.read(1)
            actual = os.path.getsize(file)
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as error:
            return f"{name} is unreadable ({error.strerror or error})"
        if size is not None and actual != size:
            return f"{name} is {actual} bytes, {size} when it was written (truncated?)"
    return None


def find_checkpoint(resume, output_dir, report=True):
    """--resume PATH (which must be complete), or 'auto': the newest complete checkpoint in --output-dir (None if
    there is none). Incomplete ones (a leftover .tmp folder, a missing, unreadable or truncated file) are skipped,
    and with `report` each is named on the console."""
    if resume != "auto":
        if not os.path.isdir(resume):
            raise loader.DataError(resume, "not a checkpoint folder", "no such folder")
        problem = checkpoint_problem(resume)
        if problem:
            raise loader.DataError(resume, "incomplete checkpoint", problem)
        return resume
    candidates = []
    for name in os.listdir(output_dir) if os.path.isdir(output_dir) else []:
        step = name.removeprefix("checkpoint-").removesuffix(".tmp")
        if name.startswith("checkpoint-") and step.isdigit() and os.path.isdir(os.path.join(output_dir, name)):
            candidates.append((int(step), not name.endswith(".tmp"), os.path.join(output_dir, name)))
    for _, _, path in sorted(candidates, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        if report:
            print(f"--resume auto: skipping {path}: {problem}")
    return None


def load_trainer_state(checkpoint):
    """trainer_state.pt of a complete checkpoint, loaded without unpickling anything but tensors and plain data;
    its `args` as a dict. A DataError (one line, exit 2) for a checkpoint of the earlier format or a state file that
    holds anything else."""
    manifest = {}  # a checkpoint from before manifests has none
    if os.path.isfile(os.path.join(checkpoint, MANIFEST)):
        with open(os.path.join(checkpoint, MANIFEST)) as f:
            manifest = json.load(f)
    if manifest.get("format", 1) < STATE_FORMAT:
        raise loader.DataError(checkpoint, "written by an earlier version of fast-grpo", "its trainer_state.pt needs "
                               "unpickling, which --resume no longer does; its weights still load: start a new run "
                               "with --model " + checkpoint)
    try:
        state = torch.load(os.path.join(checkpoint, "trainer_state.pt"), map_location="cpu", weights_only=True)
        state["args"] = json.loads(state["args"])
        if state["format"] != STATE_FORMAT or not isinstance(state["step"], int):
            raise ValueError(f"format {state['format']!r}")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError) as error:
        raise loader.DataError(checkpoint, "not a fast-grpo trainer state", "trainer_state.pt: "
                               + (str(error).strip().splitlines() or [type(error).__name__])[0][:200]) from None
    return state


def check_resume_args(saved, args, checkpoint):
    """A resumed run must be the same run: same model (also the KL reference), data, schedule (of steps and of the
    learning rate), seed, adapters."""
    for key in SAME_RUN_KEYS:
        value = saved.get(key, BEFORE_THE_KEY.get(key))
        if value != getattr(args, key):
            raise loader.DataError(checkpoint, "resumed with different arguments",
                                   f"--{key.replace('_', '-')} was {value!r}, now {getattr(args, key)!r}")

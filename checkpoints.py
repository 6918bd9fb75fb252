"""Checkpoints of a training run: a save_pretrained folder plus what --resume needs (optimizer, step, RNG states,
arguments), written atomically; finding the newest one; checking that a resumed run is the same run."""

import dataclasses
import json
import os
import random
import shutil

import numpy as np
import torch

import data



def rng_states():
    states = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(output_dir, step, policy, processor, optimizer, args):
    """checkpoint-<step>/: model + processor (from_pretrained-loadable) and trainer_state.pt.

    Written to a temporary folder and renamed, so an interruption never leaves a half-written checkpoint.
    """
    final = os.path.join(output_dir, f"checkpoint-{step}")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    torch.save(dict(step=step, optimizer=optimizer.state_dict(), rng=rng_states(), args=dataclasses.asdict(args)),
               os.path.join(tmp, "trainer_state.pt"))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def find_checkpoint(resume, output_dir):
    """--resume PATH, or 'auto': the checkpoint with the highest step in --output-dir (None if there is none)."""
    if resume != "auto":
        if not os.path.isfile(os.path.join(resume, "trainer_state.pt")):
            raise data.DataError(resume, "not a checkpoint folder", "no trainer_state.pt")
        return resume
    steps = [int(name.split("-")[1]) for name in os.listdir(output_dir) if os.path.isdir(os.path.join(output_dir, name))
             and name.startswith("checkpoint-") and name.split("-")[1].isdigit()] if os.path.isdir(output_dir) else []
    return os.path.join(output_dir, f"checkpoint-{max(steps)}") if steps else None


def check_resume_args(saved, args, checkpoint):
    """A resumed run must be the same run: same model (also the KL reference), data, schedule and seed."""
    for key in ("model", "data", "method", "max_steps", "batch_size", "group_size", "lr", "seed"):
        if saved.get(key) != getattr(args, key):
            raise data.DataError(checkpoint, "resumed with different arguments",
                                 f"--{key.replace('_', '-')} was {saved.get(key)!r}, now {getattr(args, key)!r}")


def keep_metrics_until(path, step):
    """On resume, drop logged steps after the checkpoint (they are about to be redone), keep the rest."""
    if not os.path.exists(path):
        return
    lines = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= step:
                    lines.append(line)
            except (json.JSONDecodeError, KeyError):  # a line cut short by a kill: it is redone anyway
                continue
    with open(path, "w") as f:
        f.writelines(lines)

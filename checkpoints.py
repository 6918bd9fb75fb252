"""Checkpoints of a training run: a save_pretrained folder plus what --resume needs (optimizer, step, RNG states,
arguments), written so that a kill or a full disk at any moment leaves the previous checkpoint usable; finding
the newest complete one; checking that a resumed run is the same run."""

import dataclasses
import json
import os
import random
import shutil
import time

import numpy as np
import torch
from safetensors import SafetensorError

import data

MANIFEST = "checkpoint.json"  # written last: its presence and its file sizes say the checkpoint is complete
REQUIRED_FILES = ("config.json", "trainer_state.pt")  # what a checkpoint from before manifests must hold


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the message says which and what is still intact."""


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


def save_checkpoint(output_dir, step, policy, processor, optimizer, args, rng=None):
    """checkpoint-<step>/: model + processor (from_pretrained-loadable), trainer_state.pt, and checkpoint.json.

    Everything is written to checkpoint-<step>.tmp/, the manifest (every file's size) last, and the folder is then
    renamed: a kill leaves a .tmp folder that --resume auto skips. A failed write (a full disk) removes the .tmp
    folder and raises CheckpointError; older checkpoints are never touched. `rng`: the RNG states to store
    (default: now).
    """
    final = os.path.join(output_dir, f"checkpoint-{step}")
    tmp = final + ".tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        policy.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        torch.save(dict(step=step, optimizer=optimizer.state_dict(), rng=rng or rng_states(),
                        args=dataclasses.asdict(args)), os.path.join(tmp, "trainer_state.pt"))
        pause = os.environ.get("FAST_GRPO_TEST_PAUSE_IN_SAVE", "")  # tests only, "STEP:SECONDS": a window to kill in
        if pause.split(":")[0] == str(step):
            print(f"saving {tmp}: paused", flush=True)
            time.sleep(float(pause.split(":")[1]))
        sizes = {name: os.path.getsize(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
        with open(os.path.join(tmp, MANIFEST), "w") as f:
            json.dump(dict(step=step, files=sizes), f, indent=1)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except (OSError, RuntimeError, SafetensorError) as error:  # torch.save reports a full disk as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        previous = find_checkpoint("auto", output_dir, report=False)
        raise CheckpointError(f"could not write checkpoint-{step} in {output_dir} ({error}); "
                              + (f"{previous} is intact" if previous else "no earlier checkpoint exists")
                              + "; free some space, then continue with --resume auto") from None
    return final


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
            raise data.DataError(resume, "not a checkpoint folder", "no such folder")
        problem = checkpoint_problem(resume)
        if problem:
            raise data.DataError(resume, "incomplete checkpoint", problem)
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


def check_resume_args(saved, args, checkpoint):
    """A resumed run must be the same run: same model (also the KL reference), data, schedule and seed."""
    for key in ("model", "data", "method", "max_steps", "batch_size", "group_size", "lr", "seed"):
        if saved.get(key) != getattr(args, key):
            raise data.DataError(checkpoint, "resumed with different arguments",
                                 f"--{key.replace('_', '-')} was {saved.get(key)!r}, now {getattr(args, key)!r}")

"""How a training run stops: on Ctrl-C or SIGTERM after finishing the step, on out-of-memory after saving the last
completed step, on repeated non-finite updates; each time with one line that says what to do next."""

import os
import signal

import torch
from tqdm import tqdm

from machinery import checkpoints


class TrainingError(RuntimeError):
    """The run cannot go on (repeated non-finite updates, out of memory); the message says why and where the
    weights are."""


# What the step is doing now, noted before each large piece of work (stopping.doing): an out-of-memory error is
# caught once, around the whole step (fast_grpo.train), and reported with these words.
WORK = dict(work="the step", rows=0, tokens=0, weights_changed=False)


def new_step():
    WORK.update(work="the step", rows=0, tokens=0, weights_changed=False)


def doing(work, rows, tokens=0, weights_changed=False):
    """Note the work about to run, its micro-batch size, and whether this step has changed the weights by now (once
    an optimizer step has started, it has, until the next step)."""
    WORK.update(work=work, rows=rows, tokens=tokens, weights_changed=WORK["weights_changed"] or weights_changed)


def current_work():
    """'sampling, a micro-batch of 16 rows x 300 tokens': what ran out of memory."""
    size = f" x {WORK['tokens']} tokens" if WORK["tokens"] else ""
    return f"{WORK['work']}, a micro-batch of {WORK['rows']} rows{size}"


def stop_out_of_memory(step, loaded, step_rng, policy, processor, optimizer, args):
    """Save the last completed step (unless this step already changed the weights, or it is already saved) and
    stop with one line. `loaded`: the checkpoint this run resumed from, if no step has completed since."""
    from machinery import distributed

    work, weights_changed = current_work(), WORK["weights_changed"]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    last = os.path.join(args.output_dir, f"checkpoint-{step}")
    if distributed.world_size() > 1:  # the other processes wait in a collective: no consistent save is possible
        saved = "under torchrun nothing is saved (the last checkpoint stays: --resume auto)"
    elif weights_changed:
        saved = "this step had already changed the weights, so nothing was saved (the last checkpoint stays)"
    elif step == 0:
        saved = "no step had completed, nothing to save"
    elif loaded:
        saved = f"step {step} is in {loaded}: continue with --resume {loaded}"
    elif checkpoints.checkpoint_problem(last) is None:
        saved = f"step {step} is in {last}: continue with --resume auto"
    else:
        checkpoints.save_checkpoint(args.output_dir, step, policy, processor, optimizer, args, rng=step_rng)
        saved = f"saved step {step} in {last}: continue with --resume auto"
    raise TrainingError(f"out of memory at step {step + 1} in {work}; {saved}. To use less memory: --micro-batch-size "
                        f"(now {args.micro_batch_size}), --gradient-checkpointing, --freeze-vision, --max-pixels, "
                        f"--max-new-tokens (now {args.max_new_tokens})")


def catch_stop_signals():
    """Ctrl-C (SIGINT) or SIGTERM no longer kills the run mid-step: the step finishes, a checkpoint is written,
    and the run ends cleanly. A second signal stops at once. Returns a list that names the signal once set."""
    received = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)
        tqdm.write(f"{received[0]} received: finishing this step and saving a checkpoint (again to stop at once)")

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    return received

"""Watching a run live (--report-to): TensorBoard event files by default, wandb and trackio on request.

metrics.jsonl and samples.jsonl stay the run's record; a tracker only mirrors them, on process 0. Every numeric
field of a metrics.jsonl line becomes a scalar tagged `<group>/<the key, unchanged>` (rewards/reward_mean,
lengths/tokens_easy; a dict field one scalar per entry, lengths/tokens_by_level/easy) at the line's `step`;
samples.jsonl's questions and responses go in as text. The event files lie in the run's folder, so
`tensorboard --logdir runs` lists every run. wandb and trackio are imported only when asked for, and are not
requirements: one that is not installed is reported (`problem`) before any model loads.
"""

import glob
import importlib.util
import os
import re
from dataclasses import dataclass

BACKENDS = ("tensorboard", "wandb", "trackio")
INSTALL = {"tensorboard": "pip install tensorboard (it is in requirements.txt), or --report-to none",
           "wandb": "pip install wandb", "trackio": "pip install trackio"}
# The dashboard's sections: each metrics.jsonl key under the group a reader looks for it in; a key not listed
# (a field added later) goes under other/.
GROUPS = {
    "rewards": ("reward_mean", "accuracy", "format"),
    "lengths": ("tokens_mean", "tokens_easy", "tokens_hard", "tokens_by_level", "fraction_truncated"),
    "difficulty": ("fraction_hard", "fraction_kept", "kl_coef_mean"),
    "update": ("loss", "kl", "clip_fraction", "grad_norm", "skipped_updates", "entropy", "lr"),
    "validation": ("val_accuracy", "val_tokens"),
    "time": ("seconds",),
}
GROUP_OF = {key: group for group, keys in GROUPS.items() for key in keys}
SAMPLES_TAG = "samples"
WANDB_ID_FILE = "wandb-run-id.txt"  # a resumed run continues the same wandb run
PROJECT = "fast-grpo"  # the wandb / trackio project (WANDB_PROJECT overrides it for wandb)


def backends(report_to):
    """--report-to's comma list -> the backends to use, in BACKENDS order ('none': no tracker, only the JSONL
    logs). Raises ValueError with the sentence to show for a name it does not know."""
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    unknown = [name for name in names if name not in (*BACKENDS, "none")]
    if unknown or not names:
        raise ValueError(f"--report-to: unknown {unknown[0]!r}" if unknown else "--report-to is empty")
    if "none" in names and len(names) > 1:
        raise ValueError("--report-to none cannot be combined with a tracker")
    return [name for name in BACKENDS if name in names]


def problem(report_to):
    """None if every backend --report-to asks for can be used; otherwise the one line to stop with (an unknown
    name, or a package that is not installed), found without importing any of them."""
    try:
        names = backends(report_to)
    except ValueError as error:
        return f"{error} (choose from {', '.join(BACKENDS)}, or none)"
    for name in names:
        if importlib.util.find_spec(name) is None:
            return f"--report-to {name}: {name} is not installed ({INSTALL[name]})"
    return None


def scalars(metrics):
    """{tag: value} of a metrics.jsonl line: every number, tagged `<group>/<key>` (a dict: `<group>/<key>/<name>`
    per entry). `step` is the x axis; None (nothing to measure that step) and text (update_skipped) are left out."""
    tags = {}
    for key, value in metrics.items():
        group = GROUP_OF.get(key, "rewards" if key.startswith("reward_") else "other")  # reward_<part>: --reward-fn
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for name, number in entries:
            if key != "step" and isinstance(number, (int, float)) and not isinstance(number, bool):
                tags[f"{group}/{key}" + (f"/{name}" if name is not None else "")] = float(number)
    return tags


def fenced(text):
    """`text` as a Markdown code block, shown verbatim (TensorBoard renders text as Markdown and drops raw HTML
    such as <think>; inside a code block it is escaped for display, never altered). The fence is longer than any
    run of backticks in the text, so a response's own ``` cannot end it."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def samples_markdown(samples):
    """A step's samples.jsonl lines as one Markdown text: each question and its answer, then every response with
    its reward, each inside a code block."""
    parts = []
    for number, sample in enumerate(samples, 1):
        parts += [f"### question {number} of step {sample['step']}", fenced(str(sample["question"])),
                  "answer:", fenced(str(sample["answer"]))]
        for index, (response, reward) in enumerate(zip(sample["responses"], sample["rewards"]), 1):
            parts += [f"**response {index}**, reward {reward}:", fenced(response)]
    return "\n\n".join(parts)


@dataclass
class Tracker:
    """The open trackers of one run; an empty one (process > 0, --report-to none) does nothing. A context
    manager: `with run.tracker:` closes them however the loop ends."""
    writer: object = None  # torch.utils.tensorboard.SummaryWriter
    wandb_run: object = None
    trackio: object = None  # the trackio module: its run is module-wide

    def log(self, step, tags, text=None, rows=None, text_tag=SAMPLES_TAG):
        """Scalars `tags` ({tag: value}) at `step`, the Markdown `text` (if any) under `text_tag`, and `rows`
        (step, question, response, reward) as a table where the backend has one; flushed to disk at once."""
        if self.writer is not None:
            for tag, value in tags.items():
                self.writer.add_scalar(tag, value, step)
            if text:
                self.writer.add_text(text_tag, text, step)
            self.writer.flush()  # `tensorboard --logdir` shows the step now, not after a buffer fills
        if self.wandb_run is not None:
            import wandb

            table = {SAMPLES_TAG: wandb.Table(columns=["step", "question", "response", "reward"],
                                              data=rows)} if rows else {}
            self.wandb_run.log({**tags, **table}, step=step)
        if self.trackio is not None:
            self.trackio.log(tags, step=step)

    def close(self):
        """Close every tracker (their files complete); safe to call twice."""
        if self.writer is not None:
            self.writer.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
        if self.trackio is not None:
            self.trackio.finish()
        self.writer = self.wandb_run = self.trackio = None

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()
        return False


def start(folder, report_to, settings, name, resumed_at=None, fresh=False):
    """Open the trackers --report-to names. TensorBoard writes event files into `folder` (None: no TensorBoard);
    `fresh` (a new run in that folder) first deletes older ones, as the JSONL logs are emptied; `resumed_at` (the
    checkpoint's step) makes TensorBoard hide every event from a later step (`purge_step`: those steps are about to
    be redone) and wandb continue the run whose id is in `folder`. `settings` (the flags) go to wandb / trackio as
    the run's config; `name` is the run's name there."""
    names, tracker = backends(report_to), Tracker()
    try:
        if "tensorboard" in names and folder is not None:
            from torch.utils.tensorboard import SummaryWriter

            if fresh:
                for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
                    os.remove(path)
            tracker.writer = SummaryWriter(folder, purge_step=None if resumed_at is None else resumed_at + 1)
        if "wandb" in names:
            import wandb

            tracker.wandb_run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=name,
                                           id=wandb_run_id(folder, resumed_at is not None) if folder else None,
                                           resume="allow", dir=folder, config=settings)
        if "trackio" in names:
            import trackio

            trackio.init(project=PROJECT, name=name, config=settings,
                         resume="never" if resumed_at is None else "allow")
            tracker.trackio = trackio
    except BaseException:
        tracker.close()  # the ones already open
        raise
    return tracker


def wandb_run_id(folder, resumed):
    """The wandb run id of the run in `folder`: the stored one when resuming, else a new one, stored."""
    path = os.path.join(folder, WANDB_ID_FILE)
    if resumed and os.path.isfile(path):
        with open(path) as f:
            return f.read().strip()
    import wandb

    run_id = wandb.util.generate_id()
    with open(path, "w") as f:
        f.write(run_id + "\n")
    return run_id


def log_step(tracker, metrics, samples, with_samples):
    """A training step: its metrics.jsonl line as scalars at its `step`, and (`with_samples`) its samples.jsonl
    lines as text."""
    rows = [[sample["step"], sample["question"], response, reward] for sample in samples
            for response, reward in zip(sample["responses"], sample["rewards"])] if with_samples else None
    text = samples_markdown(samples) if with_samples and samples else None
    tracker.log(metrics["step"], scalars(metrics), text, rows)

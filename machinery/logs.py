"""What a training run writes as it goes: metrics.jsonl, samples.jsonl, the console's live view, result JSONs.

Written so that a kill at any moment costs at most the line being written: a JSONL line goes to disk in one
`write` call on a file opened for appending, readers skip a line a kill cut short, and a JSON file is written
to a temporary name and renamed.
"""

import json
import os

import numpy as np


def append_jsonl(path, records):
    """Append records to a JSONL file, all of them in one write() call (a kill leaves whole lines, or at worst one
    cut line at the end, never a line cut in the middle of the file)."""
    text = "".join(json.dumps(record) + "\n" for record in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while text:  # a regular file takes it all at once; the loop only guards against a short write
            text = text[os.write(fd, text):]
    finally:
        os.close(fd)


def read_jsonl(path):
    """The records of a JSONL file; a line a kill cut short (not valid JSON) is skipped."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def keep_steps_until(path, step):
    """On resume, drop logged steps after the checkpoint (they are about to be redone) and any cut line."""
    if os.path.exists(path):
        records = [record for record in read_jsonl(path) if record.get("step", step + 1) <= step]
        write_atomically(path, "".join(json.dumps(record) + "\n" for record in records))


def write_atomically(path, text):
    """Write a whole file under a temporary name, then rename it: readers see the old file or the new one."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def group_of(example):
    """The group a question's tokens are logged under (tokens_by_level): its `level`, else its `category`
    (ViRL39K), else its `benchmark`; None when it has none of them."""
    return next((example[key] for key in ("level", "category", "benchmark") if example.get(key) is not None), None)


def step_metrics(step, shaped, correct, fmt, token_lengths, truncated, stats, levels, parts=None):
    """One line of metrics.jsonl. tokens_easy / tokens_hard: kept questions, split by the hard flag;
    tokens_by_level: every sampled response, by the data's `level` field (when the data has one). `parts`: a
    --reward-fn's parts ({name: (questions, G)}), each logged as the mean `reward_<name>`; accuracy and format are
    then None when the function has no such part (the zeros standing in for them mean nothing)."""
    parts = parts or {}
    keep, hard = shaped["keep"], shaped["hard"]
    group_size = correct.shape[1]
    hard_rows = np.repeat(hard, group_size).reshape(correct.shape)
    easy_rows = np.repeat(keep & ~hard, group_size).reshape(correct.shape)
    by_level = {level: float(token_lengths[[i for i, l in enumerate(levels) if l == level]].mean())
                for level in dict.fromkeys(levels) if level is not None}
    return dict(
        step=step + 1, reward_mean=float(shaped["reward"].mean()),
        accuracy=None if parts and "accuracy" not in parts else float(correct.mean()),
        format=None if parts and "format" not in parts else float(fmt.mean()), tokens_mean=float(token_lengths.mean()),
        tokens_easy=float(token_lengths[easy_rows].mean()) if easy_rows.any() else None,
        tokens_hard=float(token_lengths[hard_rows].mean()) if hard_rows.any() else None,
        tokens_by_level=by_level or None,
        fraction_hard=float(hard[keep].mean()) if keep.any() else 0.0,
        fraction_kept=float(keep.mean()), fraction_truncated=float(np.mean(truncated, dtype=np.float32)),
        kl_coef_mean=float(shaped["kl_coef"][keep].mean()) if keep.any() else None,
        update_skipped=None if keep.any() else "every group filtered out", **stats,
        **{f"reward_{name}": float(values.mean()) for name, values in parts.items()},
    )  # the harness adds `seconds`


def live_view(metrics):
    """The progress bar's text: reward, T = 1 accuracy, and mean tokens of kept easy and hard questions."""
    tokens = lambda key: "-" if metrics[key] is None else f"{metrics[key]:.0f}"  # noqa: E731
    accuracy = "-" if metrics["accuracy"] is None else f"{metrics['accuracy']:.2f}"  # a --reward-fn without one
    return (f"reward {metrics['reward_mean']:.2f} acc {accuracy} "
            f"tokens easy {tokens('tokens_easy')} hard {tokens('tokens_hard')}")


def compact_line(metrics):
    """Every --log-every steps: one short line with what a reader watches (all of it is in metrics.jsonl)."""
    levels = " ".join(f"{level} {value:.0f}" for level, value in (metrics["tokens_by_level"] or {}).items())
    return (f"step {metrics['step']}: {live_view(metrics)}; tokens by level: {levels or '-'}; "
            f"kept {metrics['fraction_kept']:.2f} kl {metrics['kl'] or 0:.4f} {metrics['seconds']:.1f}s")


def sample_records(step, batch, texts, reward, group_size):
    """samples.jsonl's lines of a step: the first two questions with all their responses and rewards."""
    samples = []
    for i in range(min(2, len(batch))):
        rows = range(i * group_size, (i + 1) * group_size)
        samples.append(dict(step=step + 1, question=batch[i]["question"], answer=batch[i]["answer"],
                            responses=[texts[r] for r in rows], rewards=[round(float(x), 4) for x in reward[i]]))
    return samples

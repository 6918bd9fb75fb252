# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One training step of FAST-GRPO, next to the paper
#
# This notebook takes **one step of Algorithm 1** (docs/paper.md §5) on the shipped demo model with one real batch
# of 8 questions x 8 sampled responses, and shows every quantity of the step with its numbers: the question images
# and the responses, r_acc and r_fmt, the pass rate, the image complexity H_img (Eq. 2), S_d (Eq. 3) and the hard
# flags, the thinking reward (Eq. 4), beta_q (Eq. 5), the group advantages, the loss and the update. Then it trains
# for a few steps through `fast_grpo.main`, exactly as `python fast_grpo.py` does, and compares the model before and
# after on part of the held-out set.
#
# Every number below is the one training uses: `fast_grpo.training_step(run, step, args, trace=trace)` fills the
# dict `trace` with what the step computed on its way, and the cells only display it (nothing here re-implements a
# formula). "§n" means section n of [docs/paper.md](../docs/paper.md), the specification the code follows.
#
# About 2 minutes on a 2-core CPU. To run it: from a clone, `jupyter lab notebooks/one_training_step.ipynb` (or
# open it in VS Code); on Colab, set `REPO_URL` in the next cell to the repository's address and run all cells.

# %%
REPO_URL = "https://github.com/YOUR-ACCOUNT/fast-grpo"  # Colab clones this: the repository's address on GitHub

import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

os.environ["TQDM_DISABLE"] = "1"  # no progress bars: tqdm reads this when it is first imported, so before anything
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets: harmless here

# The repository's root: this folder or one above it (the notebook runs from the root or from notebooks/).
here = pathlib.Path.cwd().resolve()
ROOT = next((p for p in (here, *here.parents) if (p / "fast_grpo.py").is_file()), None)
if ROOT is None and "google.colab" in sys.modules:  # a fresh Colab machine: clone, then install what it lacks
    ROOT = here / "fast-grpo"  # /content/fast-grpo
    if not ROOT.exists():
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(ROOT)], check=True)
    import torch  # Colab's own build (CUDA when the runtime has a GPU): kept, requirements.txt's torch line skipped

    wanted = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    wanted = [line for line in wanted if line and not line.startswith("torch")]
    keep_torch = pathlib.Path(tempfile.gettempdir()) / "keep-torch.txt"
    keep_torch.write_text(f"torch=={torch.__version__}\n")  # a constraint: nothing may replace Colab's torch
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-c", str(keep_torch), *wanted],
                   check=True)  # pip skips what Colab already has in a version that fits
if ROOT is None:
    raise RuntimeError(f"no fast_grpo.py in {here} or above it: open the notebook inside a clone of the repository")
os.chdir(ROOT)  # the project's scripts import from the root; demo/model and runs/ are relative to it
print("repository:", ROOT)

# %% [markdown]
# **Parameters.** The short run's steps and the size of the before/after evaluation (the defaults fit in about 2
# minutes on 2 CPU cores; `python fast_grpo.py` trains 80 steps and evaluates all 300 items of each level).

# %% tags=["parameters"]
STEPS = 20  # training steps of the short run (part 2)
EVAL_PER_LEVEL = 10  # held-out items per difficulty level in the before/after table (greedy, and 4 samples each)
RUN_DIR = "runs/notebook"  # where both parts write (metrics.jsonl, the checkpoint, the plot)

# %%
import signal

import numpy as np
import matplotlib.pyplot as plt
import PIL.Image
from IPython.display import Markdown, display

import difficulty
import eval as evaluation
import fast_grpo
import rewards


def table(header, rows):
    """A Markdown table (GitHub renders it in the saved notebook)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return Markdown("\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]))


def numbers(values, digits=2):
    """A row of numbers as one short string."""
    return " ".join(f"{value:.{digits}f}" for value in values)


SHOWN = {}  # every quantity a cell displays, by name (the notebook's test compares them with the library's)

# %% [markdown]
# ## Part 1: one step of Algorithm 1
#
# The run is what `python fast_grpo.py` builds: the demo model (a tiny Qwen2-VL, `demo/model/`) as the policy and as
# the frozen KL reference, AdamW, and the synthetic task "sum the digits in the image" in three levels (easy: one
# digit, medium: 3-4, hard: 5-8). `harness.start` loads it all; the step is the first of a default run, so its
# numbers are those of the first line of that run's `metrics.jsonl` (on the same machine type).

# %%
args = fast_grpo.parse_args(["--output-dir", f"{RUN_DIR}/one-step", "--report-to", "none"])
interrupt_handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
run = fast_grpo.harness.start(args, fast_grpo.command_line.describe_settings(args, fast_grpo.methods.METHODS))
for signum, handler in interrupt_handlers.items():  # start() catches Ctrl-C for a whole run: give the kernel's back
    signal.signal(signum, handler)
G = args.group_size

before_update = {name: p.detach().clone() for name, p in run.policy.named_parameters()}
trace = {}
metrics, samples = fast_grpo.training_step(run, 0, args, trace=trace)  # one iteration of Algorithm 1
print("the step's metrics line:", {key: round(value, 4) if isinstance(value, float) else value
                                   for key, value in metrics.items() if key != "tokens_by_level"})
print("trace:", ", ".join(trace))

# %% [markdown]
# ### The questions and their images, with H_img (Eq. 2, §2)
#
# H_img measures how complex an image is: here the GLCM (texture) entropy in bits, the part of Eq. 2 that needs no
# image classifier (`--complexity-model` adds a classifier's prediction entropy). It is computed once per image
# (`difficulty.image_complexity`) and cached for the whole run.

# %%
questions = trace["questions"]
SHOWN["H_img"] = trace["complexity"]
figure, axes = plt.subplots(1, len(questions), figsize=(1.5 * len(questions), 2.2), dpi=60)
for q, (axis, example, images) in enumerate(zip(np.atleast_1d(axes), questions, trace["images"])):
    axis.imshow(images[0])
    axis.set_title(f"q{q} {example['level']}\nanswer {example['answer']}\nH_img {SHOWN['H_img'][q]:.2f}", fontsize=9)
    axis.axis("off")
figure.tight_layout()
display(figure)
plt.close(figure)  # displayed once, as a small PNG
print("the question, after each image:", questions[0]["question"])

# %% [markdown]
# ### The sampled responses; r_acc and r_fmt (§1, §6)
#
# The policy samples G = 8 responses per question at temperature 1 (`vlm.sample`). Each gets two rule-based
# rewards: r_acc = 1 iff the answer in its `<answer>` block is right, r_fmt = 1 iff it is exactly one `<think>`
# block followed by one `<answer>` block (`methods.score_responses`). The pass rate of a question is the share of
# its G responses that are right (§2): its extrinsic difficulty is 1 - pass.

# %%
texts = np.array(trace["texts"], dtype=object).reshape(len(questions), G)
SHOWN.update(r_acc=trace["correct"], r_fmt=trace["fmt"], pass_rate=trace["pass_rate"])
print("q0, response 0:\n ", texts[0, 0])
wrong = np.argwhere(SHOWN["r_acc"] == 0)
if len(wrong):
    q, i = wrong[0]
    print(f"a wrong one, q{q} (answer {questions[q]['answer']}), response {i}:\n ", texts[q, i])
display(table(["q", "level", "answer", "the 8 answers given", "r_acc", "r_fmt", "pass rate"],
              [[f"q{q}", example["level"], example["answer"],
                " ".join(str(rewards.extract_answer(text)) for text in texts[q]),
                numbers(SHOWN["r_acc"][q], 0), numbers(SHOWN["r_fmt"][q], 0), f"{SHOWN['pass_rate'][q]:.3f}"]
               for q, example in enumerate(questions)]))

# %% [markdown]
# ### S_d (Eq. 3) and the hard flags (§2)
#
# S_d = (1 - pass) x h, where h is H_img rank-normalised into [0, 1] over the batch (`difficulty.complexity_ranks`):
# a question is difficult when the model fails it *and* its image is complex. theta is the 80th percentile of S_d
# over the batch's kept questions (`--hard-percentile`), and a question is hard when S_d >= theta and S_d > 0
# (`difficulty.hard_questions`). The demo trains without a curriculum (docs/demo.md), so every group is kept.

# %%
keep = trace["keep"]
kept = np.flatnonzero(keep)
SHOWN.update(keep=keep, S_d=trace["s_d"], hard=trace["hard"])
SHOWN["theta"] = float(np.percentile(SHOWN["S_d"], args.hard_percentile))  # the threshold hard_questions applies
ranks = difficulty.complexity_ranks(trace["complexity"][keep])
display(table(["q", "level", "pass rate", "1 - pass", "H_img", "h (rank)", "S_d", "hard"],
              [[f"q{q}", questions[q]["level"], f"{SHOWN['pass_rate'][q]:.3f}", f"{1 - SHOWN['pass_rate'][q]:.3f}",
                f"{SHOWN['H_img'][q]:.2f}", f"{ranks[k]:.3f}", f"{SHOWN['S_d'][k]:.3f}",
                "**hard**" if SHOWN["hard"][q] else ""] for k, q in enumerate(kept)]))
print(f"theta = the {args.hard_percentile:g}th percentile of S_d = {SHOWN['theta']:.3f}; "
      f"hard: {', '.join(f'q{q}' for q in np.flatnonzero(SHOWN['hard'])) or 'none'}")

# %% [markdown]
# ### The thinking reward, Eq. 4 (§3)
#
# L is a response's length in tokens and L_avg the mean over the batch's kept responses. An easy question's correct
# responses get r_t = 1 - L / L_avg (shorter than average pays); a hard question's wrong ones get
# r_t = min(L / L_avg - 1, 1) (longer pays, up to 1); all others 0. FAST's total reward is
# r = r_acc + 0.5 r_fmt + 0.5 r_t. Below: the responses of the first hard question and of the first easy one.

# %%
lengths = trace["lengths"]
SHOWN.update(L=lengths, r_t=trace["thinking"], reward=trace["reward"])
L_avg = lengths[keep].mean()
hard_q = [k for k, q in enumerate(kept) if SHOWN["hard"][q]][:1]
easy_q = [k for k, q in enumerate(kept) if not SHOWN["hard"][q] and SHOWN["r_acc"][q].any()][:1]
display(table(["q", "response", "hard", "L", "L / L_avg", "r_acc", "r_fmt", "r_t", "r"],
              [[f"q{kept[k]}", i, "yes" if SHOWN["hard"][kept[k]] else "no", int(lengths[kept[k], i]),
                f"{lengths[kept[k], i] / L_avg:.2f}", int(SHOWN["r_acc"][kept[k], i]), int(SHOWN["r_fmt"][kept[k], i]),
                f"{SHOWN['r_t'][k, i]:+.3f}", f"{SHOWN['reward'][kept[k], i]:.3f}"]
               for k in hard_q + easy_q for i in range(G)]))
print(f"L_avg = {L_avg:.1f} tokens over {keep.sum() * G} kept responses")

# %% [markdown]
# ### beta_q, Eq. 5 (§4)
#
# Each question gets its own KL coefficient from its pass rate, beta_q = beta_min + (beta_max - beta_min) x pass
# (0.001 and 0.03): the model explores freely on the questions it fails and stays near the reference on those it
# solves. Every token of the question's responses uses it.

# %%
SHOWN["beta"] = trace["kl_coef"]
display(table(["q", *(f"q{q}" for q in range(len(questions)))],
              [["pass rate", *(f"{p:.3f}" for p in SHOWN["pass_rate"])],
               ["beta_q", *(f"{b:.4f}" for b in SHOWN["beta"])]]))

# %% [markdown]
# ### The group advantages (§1)
#
# Each response's advantage is its reward normalised within its own group of G: A_i = (r_i - mean) / (std + 1e-6)
# (`fast_grpo.group_advantages`). A response better than its group's average is pushed up, a worse one down. A
# group whose rewards are all equal should teach nothing through its advantages (§1: A = 0 exactly, only its KL
# term acts); the line under the table checks that on this batch.

# %%
SHOWN["advantages"] = trace["advantages"].numpy().reshape(len(kept), G)
display(table(["q", "rewards r_1 .. r_8", "advantages A_1 .. A_8"],
              [[f"q{q}", numbers(SHOWN["reward"][q]), numbers(SHOWN["advantages"][k])] for k, q in enumerate(kept)]))
for k, q in enumerate(kept):
    if np.all(SHOWN["reward"][q] == SHOWN["reward"][q, 0]):  # equal in float64, as shape_rewards computed them
        print(f"q{q}: all {G} rewards equal, advantages {numbers(np.unique(SHOWN['advantages'][k]), 4)}"
              + ("" if np.all(SHOWN["advantages"][k] == 0) else " (not 0: in float32 their mean is one rounding step "
                 "off their value, and group_advantages divides that step by a std of the same size plus 1e-6)"))

# %% [markdown]
# ### The loss and one update (§1)
#
# The loss is minus GRPO's objective: per token min(rho A, clip(rho, 0.8, 1.2) A) - beta_q KL_t, averaged over each
# response's tokens and then over the responses (`fast_grpo.grpo_loss`). With one optimizer step per batch the
# sampling policy is the current one, so rho = 1 and nothing is clipped; and at the first step the policy still
# *is* the reference, so the KL is 0. One AdamW step (lr 7e-5, gradient norm clipped to 1) then moves the weights.

# %%
stats = trace["stats"]
SHOWN["loss"] = stats["loss"]
moved = {name: float((p.detach() - before_update[name]).norm()) for name, p in run.policy.named_parameters()}
print(f"loss {SHOWN['loss']:.4f}   KL {stats['kl']:.4f}   clip fraction {stats['clip_fraction']:.2f}   "
      f"gradient norm {stats['grad_norm']:.3f}   entropy {stats['entropy']:.4f} (per token)")
print(f"the update: {sum(value > 0 for value in moved.values())} of {len(moved)} weight tensors changed; "
      f"||delta theta|| = {sum(value ** 2 for value in moved.values()) ** 0.5:.4f}; the most moved: "
      f"{max(moved, key=moved.get)}")

# %% [markdown]
# ## Part 2: a short run, and the model before and after
#
# `fast_grpo.main` is `python fast_grpo.py` with these flags (the kernel's interrupt button stops it cleanly, with
# a checkpoint). The line every 5 steps shows the reward, the accuracy at temperature 1, and the mean response
# tokens of easy and hard questions; `metrics.jsonl` in the run's folder has every step. Twenty steps are a quarter
# of the default run and too few for FAST's effect to show clearly: in the default 80-step run the sampled easy
# answers fall from about 40 tokens to about 12 while the hard ones stay long (README, docs/demo.md). Set `STEPS` to
# 80 (about 6 minutes on 2 CPU cores) to watch it happen.

# %%
short_run = f"{RUN_DIR}/short-run"
fast_grpo.main(["--max-steps", str(STEPS), "--output-dir", short_run, "--save-every", str(STEPS), "--log-every", "5",
                "--no-compare-at-end"])  # the before/after table below evaluates a subset instead

# %% [markdown]
# Response length per difficulty level as it trained (the sampled responses of each step, `tokens_by_level` in
# `metrics.jsonl`):

# %%
plot = evaluation.plot_tokens_per_level(f"{short_run}/metrics.jsonl", f"{short_run}/tokens_per_level.png")
small = PIL.Image.open(plot)
small.thumbnail((480, 480))  # the saved notebook keeps a small copy; the full-size PNG is in the run's folder
display(small)

# %% [markdown]
# The starting model (the step's frozen reference) and the trained one on the first `EVAL_PER_LEVEL` held-out
# items of each level: greedy, and 4 samples at temperature 1 (`eval.demo_evaluation`; the default run evaluates
# all 300 items per level, 150 of them sampled). With 10 items per level and 20 steps the differences are within
# noise: this is the table's form, not FAST's result (that is the 80-step run's table in the README).

# %%
trained = fast_grpo.loading.load_model(f"{short_run}/checkpoint-{STEPS}", device=run.reference.device)
results = {name: evaluation.demo_evaluation(model, run.processor, args.method, args.max_new_tokens,
                                            per_level=EVAL_PER_LEVEL)
           for name, model in (("start", run.reference), ("final", trained))}
display(Markdown(evaluation.before_after_table(results, per_level=EVAL_PER_LEVEL)))

"""notebooks/one_training_step.ipynb: its text pair, its saved outputs and its imports; its first cell finding the
repository from the root and from notebooks/; and (slow) a run of the whole notebook with small sizes, in which
every quantity it shows must equal what the library computes for that batch."""

import ast
import glob
import os
import pickle

import jupytext
import nbclient
import nbformat
import numpy as np
import pytest
import torch

import difficulty
import fast_grpo
import methods
import rewards

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(HERE, "notebooks", "one_training_step.ipynb")
PAIR = os.path.join(HERE, "notebooks", "one_training_step.py")
TOP_LEVEL = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, "*.py"))}
FOLDERS = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(HERE, "*", "__init__.py"))}


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def execute(notebook, folder):
    """Runs `notebook` in a fresh kernel started in `folder`, which inherits this process's environment; a cell's
    error raises CellExecutionError."""
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": folder}}).execute()
    return notebook


def printed(notebook):
    """Everything the executed cells printed or displayed as text, joined."""
    texts = []
    for cell in code_cells(notebook):
        for output in cell.outputs:
            texts.append(output.get("text", "") + output.get("data", {}).get("text/markdown", ""))
    return "\n".join(texts)


def test_the_py_pair_holds_the_notebooks_cells():
    ipynb, py = jupytext.read(NOTEBOOK), jupytext.read(PAIR)
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert [(c.cell_type, c.source) for c in ipynb.cells] == [(c.cell_type, c.source) for c in py.cells]


def test_the_saved_notebook_reads_without_running():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"  # Jupyter and Colab open it without asking for a kernel
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))  # once, top to bottom
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2  # the images and the length plot
    assert "| sampled | hard |" in printed(notebook)  # the before/after table, last
    streams = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "\r" not in streams and "it/s" not in streams  # no progress bar (TQDM_DISABLE=1)
    assert os.path.getsize(NOTEBOOK) < 200_000  # small images, no long tables: it reads on GitHub


def test_the_notebook_imports_only_the_top_level_scripts():
    imported = set()
    for cell in code_cells(jupytext.read(PAIR)):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    assert not imported & FOLDERS, imported & FOLDERS
    assert {"fast_grpo", "difficulty", "rewards", "eval"} <= imported & TOP_LEVEL


def test_the_first_cell_finds_the_repository_from_the_root_and_from_notebooks(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernels' (the machine's cores are shared)
    first = code_cells(nbformat.read(NOTEBOOK, as_version=4))[0]
    for folder in (HERE, os.path.join(HERE, "notebooks")):
        notebook = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first.source)]), folder)
        assert f"repository: {HERE}\n" in printed(notebook)
    outside = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first.source)])
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="open the notebook inside a clone"):
        execute(outside, str(tmp_path))


@pytest.mark.slow
def test_the_notebook_runs_and_shows_the_librarys_numbers_for_its_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's (the machine's cores are shared)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "STEPS =" in parameters[0].source and "EVAL_PER_LEVEL =" in parameters[0].source
    parameters[0].source = f"STEPS = 2\nEVAL_PER_LEVEL = 1\nRUN_DIR = {str(tmp_path / 'runs')!r}"
    notebook.cells.append(nbformat.v4.new_code_cell(  # what the test needs from the kernel: shown values, raw data
        "import pickle\n"
        f"with open({str(tmp_path / 'shown.pkl')!r}, 'wb') as f:\n"
        "    pickle.dump(dict(shown=SHOWN, texts=trace['texts'], images=trace['images'], args=args,\n"
        "                     answers=[q['answer'] for q in trace['questions']]), f)"))
    execute(notebook, os.path.join(HERE, "notebooks"))  # any error in any cell raises here
    with open(tmp_path / "shown.pkl", "rb") as f:
        got = pickle.load(f)
    shown, args = got["shown"], got["args"]
    questions, group_size = len(got["answers"]), args.group_size

    # the library on the batch's raw data: the responses, the answers, the images, the lengths
    correct, fmt, _ = methods.score_responses(got["texts"], list(np.repeat(got["answers"], group_size)), args.method)
    correct, fmt = correct.reshape(questions, group_size), fmt.reshape(questions, group_size)
    assert np.array_equal(shown["r_acc"], correct) and np.array_equal(shown["r_fmt"], fmt)
    pass_rate = difficulty.pass_rates(correct)
    assert np.array_equal(shown["pass_rate"], pass_rate)
    h_img = np.array([difficulty.images_complexity(images) for images in got["images"]])
    assert np.allclose(shown["H_img"], h_img)
    shaped = fast_grpo.shape_rewards(correct, fmt, shown["L"], h_img, 0.0, **fast_grpo.reward_settings(args))
    keep = shaped["keep"]
    assert np.array_equal(shown["keep"], keep) and keep.all()  # the demo model trains without a curriculum
    s_d = difficulty.combined_difficulty(pass_rate, h_img)
    assert np.allclose(shown["S_d"], s_d)
    hard = difficulty.hard_questions(s_d, args.hard_percentile)
    assert np.array_equal(shown["hard"], hard) and np.array_equal(hard, shaped["hard"])
    assert np.array_equal(hard, (s_d >= shown["theta"]) & (s_d > 0))  # the theta shown is the one that flags
    thinking = rewards.thinking_reward(shown["L"].ravel(), correct.ravel() > 0, np.repeat(hard, group_size))
    assert np.allclose(shown["r_t"], thinking.reshape(questions, group_size))
    assert np.allclose(shown["reward"], shaped["reward"])
    assert np.allclose(shown["reward"], correct + 0.5 * fmt + fast_grpo.THINKING_WEIGHT * shown["r_t"])  # §3
    assert np.allclose(shown["beta"], difficulty.kl_coefficients(pass_rate, args.beta_min, args.beta_max))
    advantages = fast_grpo.group_advantages(shaped["reward"], args.scale_rewards)
    assert np.allclose(shown["advantages"], advantages.numpy())
    # the loss of the first step: the policy is still the reference (KL 0) and mu = 1 (ratio 1), so grpo_loss of
    # any log-probs equal to the reference's, over the responses' lengths, is the loss the update computed
    mask = torch.arange(int(shown["L"].max()))[None, :] < torch.as_tensor(shown["L"].ravel())[:, None]
    zeros = torch.zeros(mask.shape)
    loss = fast_grpo.grpo_loss(zeros, zeros, zeros, advantages.flatten(), mask,
                               torch.as_tensor(np.repeat(shaped["kl_coef"], group_size)), aggregation=args.aggregation)
    assert shown["loss"] == pytest.approx(float(loss), abs=1e-5)

    # and the cells print those numbers
    text = printed(notebook)
    assert f"= {shown['theta']:.3f}; hard:" in text and f"loss {shown['loss']:.4f}" in text
    assert "| greedy | easy |" in text and (tmp_path / "runs" / "short-run" / "checkpoint-2").is_dir()

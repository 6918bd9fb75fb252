"""Several processes with torchrun (gloo on CPU): the same method as one process, identical weights, resume."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import distributed
import fast_grpo
from test_end_to_end import weights

HERE = os.path.dirname(os.path.abspath(fast_grpo.__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_process(rank, world, port, argv, record_dir):
    """One torchrun-like process: trains with `argv`, recording what it gathered and what shape_rewards returned."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    real_gather, real_shape, gathered, shaped = distributed.gather, fast_grpo.shape_rewards, [], []

    def recording_gather(array):
        everything = real_gather(array)
        if not (isinstance(array, list) and isinstance(array[0], dict)):  # not the RNG states gathered for a checkpoint
            gathered.append((np.asarray(array).tolist(), np.asarray(everything).tolist()))
        return everything

    def recording_shape(correct, fmt, lengths, complexity, progress, args):
        result = real_shape(correct, fmt, lengths, complexity, progress, args)
        shaped.append(dict(progress=progress, **{k: np.asarray(v).tolist() for k, v in result.items()}))
        return result

    distributed.gather, fast_grpo.shape_rewards = recording_gather, recording_shape
    policy = fast_grpo.train(fast_grpo.parse_args(argv))
    with open(os.path.join(record_dir, f"rank{rank}.json"), "w") as f:
        json.dump(dict(gathered=gathered, shaped=shaped,
                       weights=[p.detach().double().sum().item() for p in policy.parameters()]), f)
    distributed.cleanup()


def test_two_processes_run_the_method_of_one_on_the_whole_batch(warm_model_dir, dataset, tmp_path):
    argv = ["--model", warm_model_dir, "--data", dataset, "--output-dir", str(tmp_path / "run"), "--method", "fast",
            "--max-steps", "2", "--batch-size", "8", "--group-size", "4", "--max-new-tokens", "24", "--lr", "1e-3",
            "--save-every", "2"]
    mp.spawn(one_process, args=(2, free_port(), argv, str(tmp_path)), nprocs=2)
    ranks = [json.load(open(tmp_path / f"rank{rank}.json")) for rank in range(2)]
    args = fast_grpo.parse_args(argv)

    # 2 steps completed, and the weights are the same on both processes (and in the checkpoint process 0 wrote)
    assert [m["step"] for m in map(json.loads, open(tmp_path / "run" / "metrics.jsonl"))] == [1, 2]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    saved = weights(tmp_path / "run" / "checkpoint-2")
    assert np.allclose([v.double().sum().item() for v in saved.values()][:3], ranks[0]["weights"][:3])

    both_halves_kept = False
    for step in range(2):
        # each step gathers 7 arrays (correct, fmt, lengths, complexity, tokens, truncated, levels): the whole batch is
        # process 0's questions then process 1's, on both processes
        calls = [rank["gathered"][7 * step:7 * step + 7] for rank in ranks]
        inputs = [np.array(calls[0][k][0] + calls[1][k][0]) for k in range(4)]
        for k in range(7):
            assert calls[0][k][1] == calls[1][k][1] == calls[0][k][0] + calls[1][k][0]
        assert inputs[0].shape == (8, 4)
        # theta (hard flags), L_avg (the thinking reward), the filter and the KL coefficients: what one process
        # computes on all 8 groups, and the same on both processes
        expected = fast_grpo.shape_rewards(*inputs, ranks[0]["shaped"][step]["progress"], args)
        for rank in ranks:
            got = rank["shaped"][step]
            for key in ("keep", "hard", "reward", "kl_coef"):
                assert np.allclose(np.asarray(got[key], dtype=float), np.asarray(expected[key], dtype=float)), key
        both_halves_kept |= bool(expected["keep"][:4].any() and expected["keep"][4:].any())
    assert both_halves_kept  # theta and L_avg were computed over groups of both processes at least once


def torchrun(*flags, output_dir, model, data):
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "fast_grpo.py", "--model", model, "--data", data, "--output-dir", str(output_dir),
                    "--max-steps", "3", "--batch-size", "4", "--group-size", "4", "--max-new-tokens", "24",
                    "--lr", "1e-3", "--save-every", "1", *flags],
                   cwd=HERE, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)


@pytest.mark.slow
def test_torchrun_trains_and_resumes_exactly(warm_model_dir, dataset, tmp_path):
    torchrun(output_dir=tmp_path, model=warm_model_dir, data=dataset)
    straight = weights(tmp_path / "checkpoint-3")
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    shutil.rmtree(tmp_path / "checkpoint-3")
    torchrun("--resume", "auto", output_dir=tmp_path, model=warm_model_dir, data=dataset)  # redoes step 3
    resumed = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    for a, b in zip(metrics, resumed):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    again = weights(tmp_path / "checkpoint-3")
    assert all(torch.equal(straight[k], again[k]) for k in straight)  # every process's RNG state was restored

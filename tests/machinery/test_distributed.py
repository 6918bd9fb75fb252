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

import fast_grpo
from machinery import distributed, fsdp, loading
import methods
from helpers import weights

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

    def recording_shape(correct, fmt, lengths, complexity, progress, **settings):
        result = real_shape(correct, fmt, lengths, complexity, progress, **settings)
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
        # each step gathers 8 arrays (correct, fmt, lengths, complexity, the overlong penalty, tokens, truncated,
        # levels): the whole batch is process 0's questions then process 1's, on both processes
        calls = [rank["gathered"][8 * step:8 * step + 8] for rank in ranks]
        inputs = [np.array(calls[0][k][0] + calls[1][k][0]) for k in range(5)]
        for k in range(8):
            assert calls[0][k][1] == calls[1][k][1] == calls[0][k][0] + calls[1][k][0]
        assert inputs[0].shape == (8, 4)
        # theta (hard flags), L_avg (the thinking reward), the filter and the KL coefficients: what one process
        # computes on all 8 groups, and the same on both processes
        expected = fast_grpo.shape_rewards(*inputs[:4], ranks[0]["shaped"][step]["progress"], overlong=inputs[4],
                                           **fast_grpo.reward_settings(args))
        for rank in ranks:
            got = rank["shaped"][step]
            for key in ("keep", "hard", "reward", "kl_coef"):
                assert np.allclose(np.asarray(got[key], dtype=float), np.asarray(expected[key], dtype=float)), key
        both_halves_kept |= bool(expected["keep"][:4].any() and expected["keep"][4:].any())
    assert both_halves_kept  # theta and L_avg were computed over groups of both processes at least once


def one_update(model_dir, dataset, aggregation, keep, sharded=False):
    """Steps 5-6 of fast_grpo.training_step (advantages of the kept groups, the kept rows, distributed.rows_for_update,
    policy_update)
    with SGD on a fixed batch of 4 questions x G = 2, micro-batches of 1 row; under torchrun each process takes its
    half of the questions (`sharded`: with the policy and the reference under FSDP). Returns the state dict after
    the step (under FSDP the full one, on process 0; empty on the others)."""
    from data_loading import loader
    import vlm

    torch.manual_seed(0)
    processor, policy = loading.load_processor(model_dir), loading.load_model(model_dir)
    reference = loading.load_model(model_dir).eval().requires_grad_(False)
    args = fast_grpo.parse_args(["--model", model_dir, "--group-size", "2", "--micro-batch-size", "1",
                                 "--aggregation", aggregation, "--max-new-tokens", "12"])
    examples = loader.load_examples(dataset)[:4]
    encoded, _ = vlm.encode_questions(processor, examples, methods.PROMPTS["fast"])
    inputs = vlm.take_rows(encoded, np.repeat(np.arange(4), 2))
    suppress = vlm.vision_token_ids(policy, processor)
    rollout = vlm.sample(policy, processor, inputs, 12, 1.0, suppress, vlm.eos_token_ids(policy, processor))
    reward, kl_coef = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.0, 1.0]]), np.array([0.01, 0.02, 0.03, 0.04])
    questions = distributed.my_share(np.arange(4))
    rows = np.concatenate([[2 * q, 2 * q + 1] for q in questions])
    text_only = any(not loader.example_images(e) for e in examples)
    if sharded:
        policy, reference = fsdp.shard(policy, torch.float32), fsdp.shard(reference, torch.float32)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    mine = np.array(keep)[questions]
    advantages = fast_grpo.group_advantages(reward[questions][mine]).flatten()
    kl_coef = torch.as_tensor(np.repeat(kl_coef[questions][mine], 2), dtype=torch.float32)
    mine_rollout = {k: rollout[k][rows] for k in ("completion_ids", "response_mask")}
    kept = np.flatnonzero(np.repeat(mine, 2))
    responses = dict(completion_ids=mine_rollout["completion_ids"][kept],
                     response_mask=mine_rollout["response_mask"][kept], advantages=advantages, kl_coef=kl_coef)
    kept, responses = distributed.rows_for_update(kept, responses, mine_rollout, 2, equal_rows=sharded)
    fast_grpo.policy_update(policy if sharded else distributed.wrap(policy, text_only), reference, optimizer,
                            vlm.take_rows(vlm.take_rows(inputs, rows), kept), responses, suppress,
                            **fast_grpo.update_settings(args))
    if sharded:
        return fsdp.full_state_dict(policy)
    return {name: p.detach().clone() for name, p in policy.state_dict().items()}


def update_process(rank, world, port, record_dir, *update_args):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    torch.save(one_update(*update_args), os.path.join(record_dir, f"update{rank}.pt"))
    distributed.cleanup()


@pytest.mark.parametrize("aggregation, keep", [
    ("seq", [True, True, False, False]),  # process 1 kept nothing: it runs the teach-nothing group
    ("token", [True, False, True, True]),  # 2 micro-batches on process 0, 4 on process 1
])
def test_two_processes_take_the_optimizer_step_of_one(warm_model_dir, dataset, tmp_path, aggregation, keep):
    before = fast_grpo.loading.load_model(warm_model_dir).state_dict()
    alone = one_update(warm_model_dir, dataset, aggregation, keep)
    assert any(not torch.equal(alone[k], before[k]) for k in before)  # the step moved the weights
    mp.spawn(update_process, args=(2, free_port(), str(tmp_path), warm_model_dir, dataset, aggregation, keep),
             nprocs=2)
    for rank in range(2):
        together = torch.load(tmp_path / f"update{rank}.pt")
        assert all(torch.allclose(alone[k], together[k], rtol=1e-4, atol=1e-7) for k in alone), rank


@pytest.fixture(scope="module")
def with_text_only(dataset, tmp_path_factory):
    """The dataset's first 4 questions, the 2nd and 3rd without their image: process 1's micro-batch of row 2
    skips the vision tower while process 0's uses it."""
    rows = [json.loads(line) for line in open(dataset)][:4]
    folder = os.path.dirname(dataset)
    for row in rows:
        row["image"] = os.path.join(folder, row["image"])
    for row in rows[1:3]:
        del row["image"]
    path = tmp_path_factory.mktemp("text-only") / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("aggregation, keep, text_only, sharded, chunked", [
    ("seq", [True, True, False, False], False, True, False), ("token", [True, False, True, True], False, True, False),
    ("seq", [True, True, True, True], True, True, False), ("seq", [True, True, True, True], True, False, False),
    ("token", [True, False, True, True], False, False, True), ("seq", [True, True, False, False], False, False, True),
    ("token", [True, False, True, True], False, True, True), ("seq", [True, True, True, True], True, True, True)])
def test_fsdp_and_ddp_with_text_only_rows_take_the_step_of_one_process(warm_model_dir, dataset, with_text_only,
                                                                       tmp_path, monkeypatch, aggregation, keep,
                                                                       text_only, sharded, chunked):
    """`chunked`: the output layer on 5 positions at a time (vlm.LOGITS_CHUNK_BYTES, set through the environment
    for the spawned processes), each chunk recomputed in the backward pass."""
    if chunked:
        vocabulary = json.load(open(os.path.join(warm_model_dir, "config.json")))["text_config"]["vocab_size"]
        chunk_bytes = 4 * 1 * vocabulary * 5  # float32 logits of one row (a micro-batch) x 5 positions
        monkeypatch.setattr(fast_grpo.vlm, "LOGITS_CHUNK_BYTES", chunk_bytes)
        monkeypatch.setenv("FAST_GRPO_LOGITS_CHUNK_BYTES", str(chunk_bytes))
    data_path = with_text_only if text_only else dataset
    alone = one_update(warm_model_dir, data_path, aggregation, keep)
    mp.spawn(update_process, args=(2, free_port(), str(tmp_path), warm_model_dir, data_path, aggregation, keep,
                                   sharded), nprocs=2)
    together = torch.load(tmp_path / "update0.pt")  # under FSDP the full state dict, gathered on process 0
    assert set(together) == set(alone)
    assert max(float((alone[k] - together[k]).abs().max()) for k in alone) < 1e-6


def torchrun(*flags, output_dir, model, data, check=True):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "fast_grpo.py", "--model", model, "--data", data, "--output-dir", str(output_dir),
                           "--max-steps", "3", "--batch-size", "4", "--group-size", "4", "--max-new-tokens", "24",
                           "--lr", "1e-3", "--save-every", "1", *flags],
                          cwd=HERE, check=check, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True)


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


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--fsdp"], ["--fsdp", "--lora-rank", "4"]])
def test_fsdp_saves_a_full_model_and_resumes_exactly(warm_model_dir, dataset, tmp_path, flags):
    torchrun(*flags, output_dir=tmp_path, model=warm_model_dir, data=dataset)
    straight, start = weights(tmp_path / "checkpoint-3"), weights(warm_model_dir)  # from_pretrained: the full model
    assert set(start) <= set(straight) and all(straight[k].shape == start[k].shape for k in start)
    assert any(not torch.equal(straight[k], start[k]) for k in start)
    assert {"optimizer-0.pt", "optimizer-1.pt"} <= set(os.listdir(tmp_path / "checkpoint-3"))
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    shutil.rmtree(tmp_path / "checkpoint-3")
    torchrun(*flags, "--resume", "auto", output_dir=tmp_path, model=warm_model_dir, data=dataset)  # redoes step 3
    resumed = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    for a, b in zip(metrics, resumed):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    again = weights(tmp_path / "checkpoint-3")
    assert all(torch.equal(straight[k], again[k]) for k in straight)
    refused = torchrun(*flags[1:], "--resume", "auto", output_dir=tmp_path, model=warm_model_dir, data=dataset,
                       check=False)
    assert refused.returncode != 0 and "resumed with different arguments (--fsdp was True, now False)" in refused.stderr


@pytest.mark.slow
def test_fsdp_samples_and_trains_on_two_image_questions(warm_model_dir, tmp_path):
    from helpers import virl39k_rows, write_parquet

    folder = tmp_path / "virl39k"  # ViRL39K's layout: one parquet file, relative image paths, a 2-image row
    folder.mkdir()
    rows = virl39k_rows(folder)
    assert max(len(row["image"]) for row in rows) == 2
    write_parquet(folder / "39Krelease.parquet", rows)
    torchrun("--fsdp", "--max-steps", "1", output_dir=tmp_path / "run", model=warm_model_dir, data=str(folder))
    (metrics,) = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert metrics["step"] == 1 and metrics["tokens_mean"] > 0
    samples = [json.loads(line) for line in open(tmp_path / "run" / "samples.jsonl")]
    assert any(sample["question"].count("<image>") == 2 for sample in samples)  # process 0 had the 2-image row
    assert weights(tmp_path / "run" / "checkpoint-1")

"""Peak memory of each phase of one training step, on a random-weight model of a real architecture's sizes.

    python -m tools.measure_memory --arch qwen2-vl-2b -- --lora-rank 8 --dtype bfloat16
    python -m tools.measure_memory --arch qwen2.5-vl-7b --layers 4 -- --lora-rank 8 --dtype bfloat16
    python -m tools.measure_memory --arch tiny --vocab 151936 --rows 8 --new-tokens 1024 -- --micro-batch-size 8

Builds the model from the published sizes of the architecture (ARCHITECTURES; `--layers` keeps fewer decoder
layers, `--vocab` another vocabulary) with random weights, saves it in bfloat16 as the hub's checkpoints are, in a
separate process (so building it does not count), then runs `fast_grpo.py` for one step on `--rows` responses to one
question with a `--image-size` noise image, flags after `--` passed on, and reports the peak memory of each phase:
loading (policy, reference, optimizer, data), sampling (`generate`), the update (the reference's and the policy's
passes, backward, optimizer step) and the checkpoint. Nothing is downloaded: the tokenizer is demo/tiny_model.py's
(token ids beyond it decode to nothing, which changes no memory figure).

On a GPU the figures are CUDA's own counters (torch.cuda.max_memory_allocated); on a CPU the process's resident
memory high-water mark (VmHWM of /proc/self/status, reset between phases by writing 5 to /proc/self/clear_refs,
after glibc's malloc_trim has returned freed memory), which counts everything the process holds, Python and the
libraries included, and weights only once they are read: from_pretrained maps the safetensors file, so on a CPU
the weights join the resident memory in the first phase that reads them (sampling), not in loading.
"""

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

# Published sizes (config.json of each Qwen/*-Instruct checkpoint): text model, then vision tower.
ARCHITECTURES = {
    "qwen2-vl-2b": dict(model_type="qwen2_vl", text=dict(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
        vocab_size=151936, rope_theta=1e6, mrope_section=[16, 24, 24]), tie=True, vision=dict(
        depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16, patch_size=14)),
    "qwen2.5-vl-3b": dict(model_type="qwen2_5_vl", text=dict(
        hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
        vocab_size=151936, rope_theta=1e6, mrope_section=[16, 24, 24]), tie=True, vision=dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048, patch_size=14,
        window_size=112, fullatt_block_indexes=[7, 15, 23, 31])),
    "qwen2.5-vl-7b": dict(model_type="qwen2_5_vl", text=dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        vocab_size=152064, rope_theta=1e6, mrope_section=[16, 24, 24]), tie=False, vision=dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
        window_size=112, fullatt_block_indexes=[7, 15, 23, 31])),
    "qwen3-vl-8b": dict(model_type="qwen3_vl", text=dict(
        hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
        head_dim=128, vocab_size=151936, rope_theta=5e6, mrope_section=[24, 20, 20]), tie=False, vision=dict(
        depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096, patch_size=16,
        num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24])),
    # the demo-sized body (demo/tiny_model.py's sizes): with --vocab, the cost of a real vocabulary alone
    "tiny": dict(model_type="qwen2_vl", text=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=None, rope_theta=1e4, mrope_section=[4, 2, 2]), tie=True, vision=dict(
        depth=1, embed_dim=32, hidden_size=64, mlp_ratio=2, num_heads=2, patch_size=14)),
}
PHASES = ("loading", "sampling", "update", "checkpoint")


def build_config(name, tokenizer, layers=None, vocab=None):
    """The transformers config of architecture `name` (ARCHITECTURES), token ids from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    arch = ARCHITECTURES[name]
    text = dict(arch["text"])
    rope = {"rope_type": "default", "rope_theta": text.pop("rope_theta"), "mrope_section": text.pop("mrope_section")}
    if arch["model_type"] == "qwen3_vl":
        rope["mrope_interleaved"] = True
    ids = tokenizer.convert_tokens_to_ids
    text.update(vocab_size=vocab or text["vocab_size"] or len(tokenizer), max_position_embeddings=32768,
                rope_parameters=rope, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
                bos_token_id=ids("<|endoftext|>"))
    if layers:
        text["num_hidden_layers"] = layers
    vision = dict(arch["vision"], spatial_merge_size=2, temporal_patch_size=2)
    tokens = dict(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                  vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
                  tie_word_embeddings=arch["tie"])
    config_class = {"qwen2_vl": Qwen2VLConfig, "qwen2_5_vl": Qwen2_5_VLConfig, "qwen3_vl": Qwen3VLConfig}
    return config_class[arch["model_type"]](text_config=text, vision_config=vision, **tokens)


def build_model(name, folder, layers=None, vocab=None):
    """A random-weight checkpoint of `name` in `folder` (bfloat16 weights, demo/tiny_model.py's tokenizer and the
    architecture's image processor); returns its parameter counts (all, vision tower)."""
    from transformers import AutoModelForImageTextToText

    from demo import tiny_model

    model_type = ARCHITECTURES[name]["model_type"]
    tokenizer = tiny_model.build_tokenizer(arch=model_type)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(build_config(name, tokenizer, layers, vocab), dtype=torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tiny_model.build_image_processor(max_pixels=2048 * 2048, arch=model_type).save_pretrained(folder)
    with open(os.path.join(folder, "chat_template.jinja"), "w") as f:
        f.write(tiny_model.CHAT_TEMPLATES[model_type])
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}")
    return sum(p.numel() for p in model.parameters()), vision


def resident_gb():
    """(current, peak since the last reset) resident memory of this process, in GB (CPU)."""
    status = open("/proc/self/status").read()
    return tuple(int(re.search(rf"{key}:\s+(\d+)", status).group(1)) * 1024 / 1e9 for key in ("VmRSS", "VmHWM"))


def reset_peak():
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        release_freed_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the high-water mark starts again from the current resident memory


def release_freed_memory():
    """Give memory the process freed back to the system (glibc keeps it otherwise, and the resident figure after a
    phase would count what the phase freed)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figures include freed memory
        pass


def current_and_peak():
    """(current, peak since reset_peak) in GB: CUDA's allocator on a GPU, the resident memory on a CPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated() / 1e9, torch.cuda.max_memory_allocated() / 1e9
    return resident_gb()


def measured(record, phase, function):
    """`function` wrapped to record the peak memory, the memory after it, and the seconds of its call."""
    def wrapper(*args, **kwargs):
        reset_peak()
        started = time.time()
        result = function(*args, **kwargs)
        if not torch.cuda.is_available():
            release_freed_memory()
        now, peak = current_and_peak()
        record[phase] = dict(peak_gb=round(peak, 3), after_gb=round(now, 3), seconds=round(time.time() - started, 1))
        return result
    return wrapper


def measure_step(model_dir, data_path, output_dir, rows, new_tokens, image_size, flags):
    """One fast_grpo.py step on `model_dir`, each phase measured; returns {phase: dict(peak_gb, after_gb, seconds)}."""
    import fast_grpo
    from machinery import harness
    import vlm

    record = {}
    fast_grpo.harness.start = measured(record, "loading", harness.start)
    fast_grpo.vlm.sample = measured(record, "sampling", vlm.sample)
    fast_grpo.policy_update = measured(record, "update", fast_grpo.policy_update)
    harness.save = measured(record, "checkpoint", harness.save)
    fast_grpo.main(["--model", model_dir, "--data", data_path, "--output-dir", output_dir, "--method", "grpo",
                    "--max-steps", "1", "--save-every", "1", "--batch-size", "1", "--group-size", str(rows),
                    "--max-new-tokens", str(new_tokens), "--max-pixels", str(image_size * image_size),
                    "--micro-batch-size", str(rows), "--log-every", "0", *flags])
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.measure_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="qwen2-vl-2b", help="published sizes")
    parser.add_argument("--layers", type=int, help="keep this many decoder layers (default: all of them)")
    parser.add_argument("--vocab", type=int, help="vocabulary size (default: the architecture's)")
    parser.add_argument("--rows", type=int, default=4, help="responses sampled and updated (one micro-batch unless "
                        "--micro-batch-size is among the flags)")
    parser.add_argument("--image-size", type=int, default=448, help="the question's image is N x N pixels")
    parser.add_argument("--new-tokens", type=int, default=32, help="--max-new-tokens (a random model rarely stops)")
    parser.add_argument("--model-dir", help="build the model here (default: a temporary folder), or reuse it")
    parser.add_argument("--output", help="append the result as one JSON line to this file")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("flags", nargs=argparse.REMAINDER, help="after --: fast_grpo.py flags for the step")
    args = parser.parse_args(argv)
    if args.build_only:
        print(json.dumps(build_model(args.arch, args.model_dir, args.layers, args.vocab)))
        return None
    flags = [flag for flag in args.flags if flag != "--"]
    with tempfile.TemporaryDirectory(prefix="measure-memory-") as scratch:
        model_dir = args.model_dir or os.path.join(scratch, "model")
        if not os.path.exists(os.path.join(model_dir, "config.json")):  # built in its own process: not counted
            command = [sys.executable, "-m", "tools.measure_memory", "--build-only", "--arch", args.arch,
                       "--model-dir", model_dir] + [f"--{k}={v}" for k, v in (("layers", args.layers),
                                                                                ("vocab", args.vocab)) if v]
            built = subprocess.run(command, check=True, capture_output=True, text=True,
                                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            parameters, vision = json.loads(built.stdout.strip().splitlines()[-1])
        else:
            parameters = vision = None
        data_path = os.path.join(scratch, "data.jsonl")
        pixels = np.random.default_rng(0).integers(0, 255, (args.image_size, args.image_size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(scratch, "image.png"))
        with open(data_path, "w") as f:
            f.write(json.dumps(dict(image="image.png", question="What is in the image?", answer="7")) + "\n")
        phases = measure_step(model_dir, data_path, os.path.join(scratch, "run"), args.rows, args.new_tokens,
                              args.image_size, flags)
    result = dict(arch=args.arch, layers=args.layers, vocab=args.vocab, rows=args.rows, image_size=args.image_size,
                  new_tokens=args.new_tokens, flags=flags, parameters=parameters, vision_parameters=vision,
                  device="cuda" if torch.cuda.is_available() else "cpu", phases=phases)
    print(f"{args.arch}{f' ({args.layers} layers)' if args.layers else ''}, {args.rows} rows, "
          f"{args.image_size}px, {args.new_tokens} new tokens, flags {' '.join(flags) or '(none)'}:")
    for phase in PHASES:
        if phase in phases:
            p = phases[phase]
            print(f"  {phase:<10} peak {p['peak_gb']:6.2f} GB, after {p['after_gb']:6.2f} GB, {p['seconds']:7.1f} s")
    if args.output:
        with open(args.output, "a") as f:
            f.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()

"""Build the shipped demo model: a tiny Qwen2-VL warm-started on the digit-sum task, over-thinking everywhere.

The supervision mixes a long, verbose worked solution and a short answer-only form
(`<think></think><answer>17</answer>`), chosen at random and independently of difficulty, so the starting
model thinks at length on easy questions too: the over-thinking FAST-GRPO sets out to fix. Every prompt
preset of fast_grpo.py appears in the mix, so every method starts from a model that knows its format.

    python -m demo.make_model --output-dir demo/model     # about 30 minutes on 2 CPU cores
    python -m demo.make_model --evaluate demo/model        # the starting-model targets, about 5 minutes
    python -m demo.make_model --probe demo/model runs/fast-grpo/checkpoint-60   # P(answer-only) per level
"""

import argparse
import os
import random
import shutil
import time

import numpy as np
import torch

from data_loading import synthetic
from demo import tiny_model, warm_start
from machinery import loading
import methods
import rewards
import vlm

LONG_FORM_SHARE = 0.7  # > 0.5, so that greedy decoding of the starting model picks the long form
PRESET_SHARES = {"fast": 0.55, "thinking": 0.15, "no-thinking": 0.15, "think-after-answer": 0.15}


def target(item, preset, rng):
    """The response the model is taught for `item` under `preset`, long or short at random. An answer given
    before any reasoning (answer-only, no-thinking, think-after-answer) is a glance estimate: exact for one
    digit, to the nearest 5 for several."""
    if preset == "no-thinking":
        return synthetic.glance_estimate(item["digits"])
    long_form = rng.random() < LONG_FORM_SHARE
    if preset == "think-after-answer":
        reasoning = synthetic.long_reasoning(item["digits"]) if long_form else ""
        return f"<answer>{synthetic.glance_estimate(item['digits'])}</answer><reason>{reasoning}</reason>"
    return synthetic.response(item, "long" if long_form else "short")


def tokenizer_corpus():
    """Prompts and example solutions, so that common words become single tokens (shorter sequences)."""
    items = synthetic.make_items(300, seed=12345)
    # the presets the shipped model was built with (a later preset, such as adaptive-thinking, would change the
    # tokenizer and so the model this script rebuilds)
    return [methods.PROMPTS[preset] for preset in PRESET_SHARES] + [synthetic.QUESTION] * 20 + [
        synthetic.response(item, "long") for item in items] + tiny_model.DEFAULT_CORPUS


def forced_form_records(model, processor, items, prefix, batch_size=64, samples=1, temperature=0.0):
    """Answer every item with the response forced to start with `prefix` (greedy by default)."""
    prompt = vlm.chat_prompt(processor, synthetic.QUESTION, methods.PROMPTS["fast"]) + prefix
    prefix_tokens = len(processor.tokenizer(prefix, add_special_tokens=False)["input_ids"])
    suppress_ids, eos_ids = vlm.vision_token_ids(model, processor), vlm.eos_token_ids(model, processor)
    records = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        inputs = vlm.encode(processor, [prompt] * len(batch), [item["image"] for item in batch])
        inputs = vlm.take_rows(inputs, np.repeat(np.arange(len(batch)), samples))
        out = vlm.sample(model, processor, inputs, 256, temperature, suppress_ids, eos_ids)
        for row, text in enumerate(out["texts"]):
            item = batch[row // samples]
            records.append(dict(level=item["level"], item=start + row // samples,
                                correct=rewards.accuracy_reward(prefix + text, item["answer"]),
                                tokens=prefix_tokens + int(out["response_mask"][row].sum())))
    return records


def evaluate_start(folder):
    """The starting-model targets of the demo: long vs answer-only accuracy and length per level (greedy,
    forced form), and the share of questions whose pass rate over 8 samples at T = 1 is strictly in (0, 1)."""
    torch.manual_seed(0)
    processor, model = loading.load_processor(folder), loading.load_model(folder)
    test_set = synthetic.split("test")
    print("| level | long-form accuracy | answer-only accuracy | long-form tokens | answer-only tokens |")
    print("|---|---|---|---|---|")
    forms = {form: forced_form_records(model, processor, test_set, prefix)
             for form, prefix in (("long", "<think>I"), ("short", "<think></think><answer>"))}
    for level in synthetic.LEVELS:
        row = [np.mean([r[key] for r in forms[form] if r["level"] == level])
               for key in ("correct", "tokens") for form in ("long", "short")]
        print(f"| {level} | {100 * row[0]:.1f} | {100 * row[1]:.1f} | {row[2]:.1f} | {row[3]:.1f} |")
    for level in synthetic.LEVELS:
        items = [item for item in test_set if item["level"] == level][:100]
        records = forced_form_records(model, processor, items, "", samples=8, temperature=1.0)
        pass_rate = np.array([r["correct"] for r in records]).reshape(len(items), 8).mean(1)
        print(f"{level}: {100 * np.mean((pass_rate > 0) & (pass_rate < 1)):.0f}% of 100 questions have a pass rate "
              f"strictly between 0 and 1 (8 samples, T = 1); mean pass rate {pass_rate.mean():.2f}; "
              f"mean tokens {np.mean([r['tokens'] for r in records]):.1f}")


def answer_only_probability(folder, per_level=32):
    """Per level, the model's probability of starting the answer-only form (`<think></think>`) rather than the
    long one: the single decision that sets the response length in this task."""
    processor, model = loading.load_processor(folder), loading.load_model(folder)
    test_set = synthetic.split("test")
    prompt = vlm.chat_prompt(processor, synthetic.QUESTION, methods.PROMPTS["fast"])
    decision_tokens = len(processor.tokenizer("<think></", add_special_tokens=False)["input_ids"])
    probabilities = {}
    for level in synthetic.LEVELS:
        items = [item for item in test_set if item["level"] == level][:per_level]
        inputs = vlm.encode(processor, [prompt] * len(items), [item["image"] for item in items])
        ids, mask = warm_start.encode_targets(processor, [synthetic.response(i, "short") for i in items],
                                              processor.tokenizer.eos_token_id)
        with torch.no_grad():
            logp = vlm.token_logprobs(model, inputs, ids, mask, 1.0, vlm.vision_token_ids(model, processor))
        probabilities[level] = logp[:, :decision_tokens].sum(1).exp().mean().item()
    return probabilities


def main():
    parser = argparse.ArgumentParser(prog="python -m demo.make_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="demo/model", help="where to save the model")
    parser.add_argument("--steps", type=int, default=1600, help="supervised steps")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (cosine decay)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data and order")
    parser.add_argument("--init", metavar="FOLDER", help="continue training this model instead of a new random one")
    parser.add_argument("--num-items", type=int, default=20000, help="distinct training images drawn")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the shipped model was trained on cpu)")
    parser.add_argument("--evaluate", metavar="FOLDER", help="only evaluate the model in FOLDER (no training)")
    parser.add_argument("--probe", metavar="FOLDER", nargs="+", help="only print P(answer-only form) per level")
    args = parser.parse_args()
    if args.evaluate:
        return evaluate_start(args.evaluate)
    if args.probe:
        for folder in args.probe:
            print(folder, " ".join(f"{level}={p:.3f}" for level, p in answer_only_probability(folder).items()))
        return

    started = time.time()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.init:
        folder = args.output_dir
        if os.path.abspath(args.init) != os.path.abspath(folder):
            shutil.copytree(args.init, folder, dirs_exist_ok=True)
        for name in os.listdir(folder):  # cached evaluations describe the old weights
            if name.startswith("start_eval"):
                os.remove(os.path.join(folder, name))
    else:
        folder = tiny_model.build_tiny_model(args.output_dir, seed=args.seed, corpus=tokenizer_corpus(), vocab_size=800,
                                             hidden_size=128, num_layers=4, num_heads=4, vision_embed_dim=64,
                                             vision_depth=2)
    processor, model = loading.load_processor(folder), loading.load_model(folder, device=args.device)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    items = synthetic.split("train", args.num_items)
    presets, weights = zip(*PRESET_SHARES.items())
    prompts = {p: vlm.chat_prompt(processor, synthetic.QUESTION, methods.PROMPTS[methods.METHODS[p]["prompt"]])
               for p in presets}

    def make_batch(step):
        batch = [(rng.choice(items), rng.choices(presets, weights)[0]) for _ in range(args.batch_size)]
        return ([prompts[p] for _, p in batch], [item["image"] for item, _ in batch],
                [target(item, p, rng) for item, p in batch])

    def log(step, loss):
        if step % 100 == 0 or step == args.steps - 1:
            prompt_batch, images, targets = make_batch(step)
            with torch.no_grad():
                true = warm_start.sft_loss(model, processor, prompt_batch, images, targets).item()
                shuffled = warm_start.sft_loss(model, processor, prompt_batch, images[1:] + images[:1], targets).item()
            # if this gap stays ~0 the model ignores the image
            print(f"step {step:5d}  loss {loss:.4f}  shuffled-image loss - loss {shuffled - true:+.4f}  "
                  f"{time.time() - started:.0f}s", flush=True)

    warm_start.supervised_finetune(model, processor, make_batch, args.steps, lr=args.lr, on_step=log)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    print(f"saved {folder} after {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()

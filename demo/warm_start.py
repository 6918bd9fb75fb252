"""Supervised fine-tuning (teacher forcing) of a Qwen2-VL model on (image, prompt, response) triples.

A random tiny model never earns a reward, so GRPO has nothing to learn from. A short warm start on
target responses gives it a starting policy whose samples are sometimes right and sometimes wrong.
"""

import torch

import vlm


def encode_targets(processor, targets, eos_id):
    """Response texts -> right-padded token ids ending with the end-of-turn token, and their mask."""
    ids = [processor.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos_id] for t in targets]
    width = max(len(row) for row in ids)
    pad = processor.tokenizer.pad_token_id
    completion_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids], dtype=torch.bool)
    return completion_ids, mask


def sft_loss(model, processor, prompts, images, targets):
    """Mean negative log-likelihood per response token of `targets` given image and prompt."""
    inputs = vlm.encode(processor, prompts, images)
    completion_ids, mask = encode_targets(processor, targets, processor.tokenizer.eos_token_id)
    logp = vlm.token_logprobs(model, inputs, completion_ids, mask, 1.0, vlm.vision_token_ids(model, processor))
    mask = mask.to(logp.device)
    return -(logp * mask).sum() / mask.sum()


def supervised_finetune(model, processor, make_batch, steps, lr=2e-3, warmup=20, on_step=None):
    """`steps` AdamW steps (cosine decay after a linear warm-up) on batches from `make_batch(step)`.

    make_batch(step) returns (prompts, images, targets); on_step(step, loss) is called after each step.
    Returns the list of losses.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / steps))))
    model.train()
    losses = []
    for step in range(steps):
        loss = sft_loss(model, processor, *make_batch(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
    return losses

"""What GRPO does with a vision-language model: chat prompts, sampling G responses with HF `generate`, and the
per-token log-probs the objective needs (docs/paper.md §1), plus Eq. 2's classifier pass over a batch of images.

Everything here works the same for Qwen/Qwen2-VL-2B-Instruct and for the tiny checkpoints the tests build
(demo/tiny_model.py): same classes, same processor, same chat template. Loading them is machinery/loading.py; what
differs for the other families (SmolVLM, Gemma 3, InternVL) is model_families/families.py.
"""

import os

import numpy as np
import torch
from torch.distributed.fsdp import FSDPModule
from torch.utils.checkpoint import checkpoint
from transformers import GenerationConfig

from data_loading import loader
import difficulty
from model_families import families
from model_families.families import images_per_row, take_rows, vision_token_ids  # noqa: F401 (each family's)


@torch.no_grad()
def class_probabilities(classifier, images, batch_size=32):
    """Softmax of the classifier's logits for each image, batched: (len(images), classes) float64 numpy."""
    model, image_processor = classifier
    probabilities = []
    for start in range(0, len(images), batch_size):
        pixels = image_processor(images=images[start:start + batch_size], return_tensors="pt")["pixel_values"]
        logits = model(pixel_values=pixels.to(model.device, model.dtype)).logits
        probabilities.append(logits.double().softmax(-1).cpu().numpy())
    return np.concatenate(probabilities)


def eos_token_ids(model, processor):
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return sorted(set(eos) | ({processor.tokenizer.eos_token_id} - {None}))


def prompt_content(question, instruction, num_images=1):
    """The user turn's parts: the question's images where its `<image>` placeholders are (all of them before the
    text when it has none), its text, and the method's instruction after it.

    Text between placeholders is kept as it is (EasyR1's rule); only the ends of the question are stripped.
    """
    pieces = question.strip().split(loader.PLACEHOLDER)
    if len(pieces) == 1:  # no placeholder: the images first, as Qwen2-VL's examples put them
        pieces = [""] * num_images + pieces
    elif len(pieces) - 1 != num_images:
        raise ValueError(f"{len(pieces) - 1} {loader.PLACEHOLDER} placeholders for {num_images} images")
    pieces[-1] = f"{pieces[-1]} {instruction}".strip()
    content = []
    for i, piece in enumerate(pieces):
        if i:
            content.append({"type": "image"})
        if piece:
            content.append({"type": "text", "text": piece})
    return content


def chat_prompt(processor, question, instruction, num_images=1):
    """The model's chat template around the question with its images (prompt_content) and the instruction."""
    messages = [{"role": "user", "content": prompt_content(question, instruction, num_images)}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode(processor, prompts, images):
    """Tokenise prompts (left-padded) and process their images: `images` is the flat list of every row's images in
    row order (a row has as many as its prompt has image slots; None or [] when no row has any)."""
    images = families.per_prompt(processor, prompts, images) or None  # Gemma 3 takes a list per prompt
    return families.encoded(processor, processor(text=prompts, images=images, return_tensors="pt", padding=True))


def encode_questions(processor, examples, instruction, max_pixels=None):
    """A batch of examples -> (encoded prompts, one row per example; each example's decoded images, a list).

    The one place training and evaluation turn examples into model inputs: images decoded (shrunk to `max_pixels`)
    for this batch only, placed where the question's `<image>` placeholders are, any number per question (0, 1, 2..).
    """
    images = [[loader.load_image(image, max_pixels) for image in loader.example_images(e)] for e in examples]
    prompts = [chat_prompt(processor, e["question"], instruction, len(i)) for e, i in zip(examples, images)]
    return encode(processor, prompts, [image for row in images for image in row]), images


def question_complexities(classifier, images_per_question):
    """Eq. 2's H_img of each question from its decoded images (difficulty.images_complexity: the mean over its
    images; NaN for a question without one). The classifier, if any, sees all the images as one batch."""
    flat = [image for images in images_per_question for image in images]
    probabilities = class_probabilities(classifier, flat) if classifier and flat else [None] * len(flat)
    complexities, start = [], 0
    for images in images_per_question:
        complexities.append(difficulty.images_complexity(images, probabilities[start:start + len(images)]))
        start += len(images)
    return complexities


def response_mask_from(completion_ids, eos_ids):
    """docs/paper.md §1: generated tokens up to and including the first end-of-sequence token; padding after it is
    excluded.

    Returns (mask (N, T) bool, truncated (N,) bool: no end-of-sequence token within the budget).
    """
    is_eos = torch.isin(completion_ids, torch.as_tensor(eos_ids, device=completion_ids.device))
    ended_before = (torch.cumsum(is_eos.int(), dim=1) - is_eos.int()) > 0
    return ~ended_before, ~is_eos.any(dim=1)


@torch.no_grad()
def sample(model, processor, inputs, max_new_tokens, temperature, suppress_ids, eos_ids, return_logprobs=False):
    """Sample one response per row with HF `generate` (temperature 0 = greedy).

    top-k, top-p and repetition penalty are switched off so that the sampling distribution is exactly
    softmax(logits / T) with the vision tokens removed: the distribution `token_logprobs` recomputes.
    """
    # do_sample must be explicit: unset fields are filled from the checkpoint's own generation config
    sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if temperature > 0 else dict(
        do_sample=False)
    config = GenerationConfig(
        **sampling, repetition_penalty=1.0, max_new_tokens=max_new_tokens, suppress_tokens=suppress_ids,
        eos_token_id=eos_ids, pad_token_id=processor.tokenizer.pad_token_id,
        return_dict_in_generate=True, output_scores=return_logprobs,
    )
    was_training = model.training
    model.eval()
    device = model.device
    out = model.generate(**{k: v.to(device) for k, v in families.model_inputs(inputs).items()},
                         generation_config=config)
    model.train(was_training)
    completion_ids = out.sequences[:, inputs["input_ids"].shape[1]:].cpu()
    response_mask, truncated = response_mask_from(completion_ids, eos_ids)
    texts = processor.batch_decode(completion_ids.masked_fill(~response_mask, processor.tokenizer.pad_token_id),
                                   skip_special_tokens=True)
    result = dict(completion_ids=completion_ids, response_mask=response_mask, truncated=truncated, texts=texts)
    if return_logprobs:  # only for tests: scores hold (N, vocab) logits for every step
        scores = torch.stack(out.scores, dim=1).float().log_softmax(-1).cpu()
        result["logprobs"] = scores.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    return result


# float32 logits a chunk of positions may hold (the whole vocabulary each); tests make it small
LOGITS_CHUNK_BYTES = int(os.environ.get("FAST_GRPO_LOGITS_CHUNK_BYTES", 256 * 2**20))


def token_logprobs(model, inputs, completion_ids, response_mask, temperature, suppress_ids, entropy=False):
    """Per-token log-probs of the completions under `model`: (N, T) float32; with `entropy`, also each position's
    entropy of the policy (N, T), without gradient. Same distribution as `sample` (completion_logprobs).

    One forward pass gives the final hidden states (prompt rows are left-padded, so all completions start at the
    same column); the output layer then runs on a chunk of positions at a time, each chunk's float32 logits at most
    LOGITS_CHUNK_BYTES and recomputed in the backward pass: the micro-batch's (rows x positions x vocabulary) logits
    are never held at once. A micro-batch under that size is one chunk, computed exactly as a whole forward would.
    """
    device = next(model.parameters()).device  # also when model is wrapped in DistributedDataParallel
    num_tokens = completion_ids.shape[1]
    extended = {key: torch.cat([inputs[key], extra], dim=1).to(device) for key, extra in (  # prompt, then completion
        ("input_ids", completion_ids), ("attention_mask", response_mask.long()),
        *((key, torch.zeros_like(completion_ids)) for key in families.TOKEN_TYPE_KEYS)) if key in inputs}
    images = {key: inputs[key].to(device) for key in families.IMAGE_KEYS if key in inputs}  # or none
    model_inputs = dict(extended, **images)
    base = getattr(model, "module", model)  # DistributedDataParallel's model; a PEFT model answers for its base
    # the positions that predict the completion tokens, and the last one. Under FSDP the root's own weights (the
    # output layer among them) stay gathered from its forward until its backward: the chunks below may use them.
    hidden = final_hidden_states(model, **model_inputs)[:, -(num_tokens + 1):]
    head = base.get_output_embeddings()
    per_chunk = max(1, LOGITS_CHUNK_BYTES // (4 * len(hidden) * base.config.get_text_config().vocab_size))
    recompute = num_tokens > per_chunk and torch.is_grad_enabled()  # several chunks: keep none for the backward
    chunks = []
    for start in range(0, num_tokens, per_chunk):  # a chunk's hidden states reach one past it: it predicts its end
        args = (head, hidden[:, start:start + per_chunk + 1], completion_ids[:, start:start + per_chunk].to(device),
                temperature, suppress_ids, entropy, families.logit_softcap(base))
        chunks.append(checkpoint(completion_logprobs, *args, use_reentrant=False) if recompute
                      else completion_logprobs(*args))
    if isinstance(base, FSDPModule) and not torch.is_grad_enabled():
        base.reshard()  # FSDP keeps the root's weights gathered for a backward pass; without gradients none comes
    logp = torch.cat([chunk[0] for chunk in chunks], dim=1)
    return (logp, torch.cat([chunk[1] for chunk in chunks], dim=1)) if entropy else logp


def completion_logprobs(head, hidden, completion_ids, temperature, suppress_ids, entropy=False, softcap=None):
    """The log-prob of each completion token (and the entropy at its position, or None) from the final hidden states
    `hidden` (N, T + 1, H) of the positions before it and one more, through the output layer `head` (and the
    family's soft-cap, where its forward applies one): logits / temperature with the vision tokens masked out, the
    distribution `sample` draws from."""
    # contiguous: a bfloat16 matmul on a strided slice takes a slow path on CPUs (3-20 times slower, measured)
    logits = head(hidden.contiguous())[:, :-1].float()  # the logit at position t predicts token t + 1
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    logits = logits / (temperature if temperature > 0 else 1.0)
    logits[..., suppress_ids] = float("-inf")
    logp = logits.log_softmax(-1)
    token_entropy = None
    if entropy:  # -sum p log p; p log p is 0 where p = 0 (a masked token: 0 x -inf, a NaN set to 0), in place
        with torch.no_grad():
            token_entropy = -logp.exp().mul_(logp).nan_to_num_(0.0).sum(-1)
    return logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1), token_entropy


def final_hidden_states(model, **inputs):
    """The language model's last hidden states (rows, positions, H) from a forward pass through `model` itself (its
    DDP or LoRA wrapper included), caught by a hook on its decoder; the forward computes one position's logits."""
    caught = []
    decoder = getattr(model, "module", model).get_decoder()  # DDP's model; a PEFT model answers for its base
    hook = decoder.register_forward_hook(lambda module, args, output: caught.append(output[0]))
    try:
        model(**inputs, logits_to_keep=1, use_cache=False)
    finally:
        hook.remove()
    return caught[-1]

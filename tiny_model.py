"""Build a tiny, random Qwen2-VL-architecture checkpoint offline.

Tests and trials cannot download Qwen/Qwen2-VL-2B-Instruct, so we build a model of the *same classes*
(Qwen2VLForConditionalGeneration, Qwen2Tokenizer, the Qwen2-VL image processor, the Qwen2-VL chat
template) with tiny sizes, and save it with `save_pretrained`. `--model <that folder>` then goes through
exactly the loading code a real checkpoint does.

    python tiny_model.py --output-dir tiny-qwen2-vl
"""

import argparse
import json

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration

# The special tokens of Qwen2-VL, in the order the real tokenizer numbers them (after the ordinary vocabulary).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

# The chat template shipped with Qwen2-VL-*-Instruct (image and video placeholders, default system prompt).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the byte-level BPE learns its merges from: the prompts and answer tags the project uses, so that
# prompts are a few dozen tokens instead of a few hundred characters. Digits always stay single tokens
# (Qwen's pre-tokenizer splits numbers into digits).
DEFAULT_CORPUS = [
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in <answer> </answer> tags.",
    "Please output the thinking process in <think> </think> and final answer in <answer> </answer> tags.",
    "Please directly output the answer.",
    "Please first output the answer in <answer> </answer> tags and then output a brief reasoning process "
    "in <reason> </reason> tags.",
    "What is the sum of the digits in the image? Read the digits in order, then add them step by step.",
    "You are a helpful assistant. system user assistant",
]


def build_tokenizer(corpus=None, vocab_size=400):
    """A small byte-level BPE tokenizer with Qwen2's pre-tokenizer, special tokens and chat template."""
    # Qwen2TokenizerFast sets Qwen's pre-tokenizer regex; we only need its vocabulary and merges.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = Qwen2TokenizerFast(vocab={"<|endoftext|>": 0}, merges=[])._tokenizer.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(corpus or DEFAULT_CORPUS, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2TokenizerFast(vocab=state["vocab"], merges=[tuple(m) for m in state["merges"]])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_image_processor(max_pixels=112 * 112, min_pixels=28 * 28):
    """The Qwen2-VL image processor (patch 14, merge 2, CLIP mean/std), PIL backend: no torchvision needed."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


def build_config(tokenizer, hidden_size=64, num_layers=2, num_heads=4, vision_embed_dim=32, vision_depth=1):
    """A Qwen2-VL config with tiny sizes whose token ids match `tokenizer`.

    M-RoPE splits each attention head's rotary half-dimension into (temporal, height, width) sections, so
    the sections must sum to head_dim / 2.
    """
    head_dim = hidden_size // num_heads
    half = head_dim // 2
    mrope_section = [half - 2 * (half // 3), half // 3, half // 3]
    ids = tokenizer.convert_tokens_to_ids
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads // 2,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section},
            bos_token_id=ids("<|endoftext|>"),
            eos_token_id=ids("<|im_end|>"),
            pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=vision_depth,
            embed_dim=vision_embed_dim,
            hidden_size=hidden_size,  # the merger projects vision features to the text width
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build_tiny_model(output_dir, seed=0, corpus=None, vocab_size=400, max_pixels=112 * 112, **sizes):
    """Build tokenizer, image processor and a random tiny model, save all three to `output_dir`."""
    import torch

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(corpus, vocab_size)
    image_processor = build_image_processor(max_pixels=max_pixels)
    model = Qwen2VLForConditionalGeneration(build_config(tokenizer, **sizes))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    image_processor.save_pretrained(output_dir)
    with open(f"{output_dir}/chat_template.jinja", "w") as f:
        f.write(CHAT_TEMPLATE)
    return output_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="folder to write the checkpoint to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args()
    print("saved to", build_tiny_model(args.output_dir, seed=args.seed))

"""Build tiny, random Qwen2-VL, Qwen2.5-VL and Qwen3-VL checkpoints offline, a text-only Qwen2 (the class of
Qwen2.5 and DeepSeek-R1-Distill-Qwen) one, and one of each other VLM family (SmolVLM's Idefics3, Gemma 3, InternVL:
model_families/, docs/model-families.md).

Tests and trials cannot download Qwen/Qwen2-VL-2B-Instruct (or Qwen2.5-VL, Qwen3-VL), so we build models of the
*same classes* (Qwen2VLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration /
Qwen3VLForConditionalGeneration, Qwen2Tokenizer, the Qwen2-VL image processor with each architecture's patch
size and normalisation, each family's chat template) with tiny sizes, and save them with `save_pretrained`.
`--model <that folder>` then goes through exactly the loading code a real checkpoint does.

    python -m demo.tiny_model --output-dir tiny-qwen2-vl
    python -m demo.tiny_model --arch qwen3_vl --output-dir tiny-qwen3-vl
    python -m demo.tiny_model --arch qwen2 --output-dir tiny-qwen2      # text-only: Qwen2ForCausalLM, no images
    python -m demo.tiny_model --arch qwen3 --output-dir tiny-qwen3      # text-only: Qwen3ForCausalLM
    python -m demo.tiny_model --arch gemma3 --output-dir tiny-gemma3    # also idefics3 (SmolVLM), internvl

The other families keep the byte-level BPE (the tokenizer's class matters to no code here) with each family's special
tokens, a chat template of the real one's shape, and its PIL image processor (no torchvision) at a 16-pixel (Gemma 3,
InternVL) or 32-pixel (Idefics3 crops) image size: four image tokens per image or crop.
"""

import argparse
import json

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, AutoModelForImageTextToText, Qwen2_5_VLConfig, Qwen2Config,
                          Qwen2TokenizerFast, Qwen2VLConfig, Qwen3Config, Qwen3VLConfig)

ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")  # config.json's model_type
TEXT_ARCHITECTURES = ("qwen2", "qwen3")  # text-only causal LMs (machinery/text_models.py): no image processor
FAMILY_ARCHITECTURES = ("idefics3", "gemma3", "internvl")  # the other VLM families (model_families/)

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

# Qwen3-VL-*-Instruct's template, the image and text part: no default system prompt (Qwen2/2.5-VL add one).
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen2.5-*-Instruct's template without its tool-calling branches: text only. It concatenates message['content']
# as a string, so content given as a list of parts is refused (TypeError), as the real template does.
QWEN2_5_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}{% if not (message['role'] == 'system' and loop.first) %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# SmolVLM's (Idefics3) template: "User:<image>text<end_of_utterance>\nAssistant:"; the processor expands <image>
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# Gemma 3's, without its system-prompt folding: an image is <start_of_image>, which the processor expands
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<start_of_image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# InternVL3-*-hf's (Qwen2.5's turns): an image is <IMG_CONTEXT>, which the processor expands to <img>...</img>
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATES = {"qwen2_vl": CHAT_TEMPLATE, "qwen2_5_vl": CHAT_TEMPLATE, "qwen3_vl": QWEN3_VL_CHAT_TEMPLATE,
                  "qwen2": QWEN2_5_CHAT_TEMPLATE, "qwen3": QWEN2_5_CHAT_TEMPLATE, "idefics3": IDEFICS3_CHAT_TEMPLATE, "gemma3": GEMMA3_CHAT_TEMPLATE,
                  "internvl": INTERNVL_CHAT_TEMPLATE}

# Each other family's special tokens (pad, eos, bos, the rest), and the named ones its processor reads off the
# tokenizer (Gemma 3's boi/eoi/image tokens, InternVL's <img>, </img>, <IMG_CONTEXT>)
FAMILY_TOKENS = {
    "idefics3": dict(pad="<|endoftext|>", eos="<end_of_utterance>", bos="<|im_start|>", other=[
        "<fake_token_around_image>", "<image>", "<global-img>",
        *[f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]], named={}),
    "gemma3": dict(pad="<pad>", eos="<end_of_turn>", bos="<bos>", other=["<start_of_turn>"], named=dict(
        boi_token="<start_of_image>", eoi_token="<end_of_image>", image_token="<image_soft_token>")),
    "internvl": dict(pad="<|endoftext|>", eos="<|im_end|>", bos=None, other=["<|im_start|>"], named=dict(
        start_image_token="<img>", end_image_token="</img>", context_image_token="<IMG_CONTEXT>",
        video_token="<video>")),
}

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


def build_tokenizer(corpus=None, vocab_size=400, arch="qwen2_vl"):
    """A small byte-level BPE tokenizer with Qwen2's pre-tokenizer, the family's special tokens and chat template."""
    # Qwen2TokenizerFast sets Qwen's pre-tokenizer regex; we only need its vocabulary and merges.
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = Qwen2TokenizerFast(vocab={"<|endoftext|>": 0}, merges=[])._tokenizer.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(corpus or DEFAULT_CORPUS, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    if arch in FAMILY_TOKENS:
        return build_family_tokenizer(state, arch)
    tokenizer = Qwen2TokenizerFast(vocab=state["vocab"], merges=[tuple(m) for m in state["merges"]])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    if arch == "qwen3_vl":  # Qwen3 vocabularies hold the thinking tags as (non-special) added tokens
        tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = CHAT_TEMPLATES[arch]
    return tokenizer


def build_family_tokenizer(state, arch):
    """The BPE vocabulary `state` with the special tokens of the family `arch` (FAMILY_TOKENS) and its template."""
    tokens = FAMILY_TOKENS[arch]
    tokenizer = Qwen2TokenizerFast(vocab=state["vocab"], merges=[tuple(m) for m in state["merges"]],
                                   extra_special_tokens=tokens["named"])
    tokenizer.add_special_tokens({"additional_special_tokens": tokens["other"]})
    tokenizer.add_special_tokens({f"{key}_token": tokens[key] for key in ("pad", "eos", "bos") if tokens[key]})
    tokenizer.chat_template = CHAT_TEMPLATES[arch]
    return tokenizer


def build_family_processor(tokenizer, arch):
    """The processor of the family `arch` around `tokenizer`, with its PIL image processor at tiny sizes; InternVL's
    is built as model_families builds it without torchvision (its AutoProcessor needs a video processor)."""
    from transformers import Gemma3Processor, Idefics3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.internvl.processing_internvl import InternVLProcessor

    from model_families import families

    if arch == "idefics3":  # resized to a longest edge of 64, split into 32-pixel crops plus the whole image
        return Idefics3Processor(Idefics3ImageProcessorPil(size={"longest_edge": 64},
                                                           max_image_size={"longest_edge": 32}),
                                 tokenizer, image_seq_len=4, chat_template=CHAT_TEMPLATES[arch])
    if arch == "gemma3":
        return Gemma3Processor(Gemma3ImageProcessorPil(size={"height": 16, "width": 16}), tokenizer,
                               chat_template=CHAT_TEMPLATES[arch], image_seq_length=4)
    image_processor = GotOcr2ImageProcessorPil(size={"height": 16, "width": 16}, crop_to_patches=False,
                                               image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return families.image_only_processor(InternVLProcessor)(image_processor, tokenizer, image_seq_length=4,
                                                            chat_template=CHAT_TEMPLATES[arch])


def build_family_config(tokenizer, arch, hidden_size=64, num_layers=2, num_heads=4, vision_embed_dim=32,
                        vision_depth=1):
    """A tiny config of the family `arch` whose token ids match `tokenizer`: 16-pixel images (Idefics3: 32-pixel
    crops) in 4-pixel (Idefics3: 8) patches, pooled to four image tokens."""
    from transformers import Gemma3Config, Idefics3Config, InternVLConfig

    ids = tokenizer.convert_tokens_to_ids
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads // 2,
                max_position_embeddings=4096, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    vision = dict(hidden_size=vision_embed_dim, intermediate_size=2 * vision_embed_dim,
                  num_hidden_layers=vision_depth, num_attention_heads=2)
    if arch == "idefics3":  # SmolVLM: a Llama text model; pixel shuffle by 2 turns 16 patches into 4 tokens
        return Idefics3Config(text_config=dict(text, model_type="llama"), vision_config=dict(
            vision, image_size=32, patch_size=8), scale_factor=2, image_token_id=ids("<image>"),
            tie_word_embeddings=True)
    if arch == "gemma3":  # 4x4 patches average-pooled to 2x2 tokens; sliding and full attention layers
        return Gemma3Config(text_config=dict(text, head_dim=hidden_size // num_heads, query_pre_attn_scalar=16,
                                             sliding_window=64, layer_types=["sliding_attention", "full_attention"]),
                            vision_config=dict(vision, image_size=16, patch_size=4), mm_tokens_per_image=4,
                            boi_token_index=tokenizer.boi_token_id, eoi_token_index=tokenizer.eoi_token_id,
                            image_token_index=tokenizer.image_token_id)
    if arch == "internvl":  # a Qwen2 text model; pixel shuffle (downsample 0.5) turns 16 patches into 4 tokens
        return InternVLConfig(text_config=dict(text, model_type="qwen2"), vision_config=dict(
            vision, image_size=16, patch_size=4), image_token_id=tokenizer.context_image_token_id,
            image_seq_length=4, downsample_ratio=0.5)
    raise ValueError(f"arch must be one of {FAMILY_ARCHITECTURES}, got {arch!r}")


def build_image_processor(max_pixels=None, min_pixels=None, arch="qwen2_vl"):
    """The Qwen2-VL image processor, PIL backend (no torchvision needed), as each architecture configures it:
    patch 14 and CLIP mean/std for Qwen2-VL and Qwen2.5-VL, patch 16 and mean/std 0.5 for Qwen3-VL; merge 2.
    Default pixel range: 1 to 16 image tokens."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    patch = 16 if arch == "qwen3_vl" else 14
    normalise = dict(image_mean=[0.5] * 3, image_std=[0.5] * 3) if arch == "qwen3_vl" else {}
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels or (2 * patch) ** 2,
                                    max_pixels=max_pixels or (8 * patch) ** 2, patch_size=patch, merge_size=2,
                                    **normalise)


def build_config(tokenizer, arch="qwen2_vl", hidden_size=64, num_layers=2, num_heads=4, vision_embed_dim=32,
                 vision_depth=1):
    """A config of `arch` with tiny sizes whose token ids match `tokenizer` (Qwen2Config for the text-only "qwen2").

    M-RoPE splits each attention head's rotary half-dimension into (temporal, height, width) sections, so
    the sections must sum to head_dim / 2 (Qwen3-VL interleaves them).
    """
    head_dim = hidden_size // num_heads
    half = head_dim // 2
    sections = [half - 2 * (half // 3), half // 3, half // 3]
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": sections}
    ids = tokenizer.convert_tokens_to_ids
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads // 2,
                max_position_embeddings=4096, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"), rope_parameters=rope)
    if arch in TEXT_ARCHITECTURES:  # text-only: plain 1-D RoPE, no vision tower; tied embeddings as in the small
        # Qwen2.5 / Qwen3 models; Qwen3 adds q/k norms and an explicit head_dim
        config_class = Qwen2Config if arch == "qwen2" else Qwen3Config
        extra = {} if arch == "qwen2" else dict(head_dim=head_dim)
        return config_class(**dict(text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
                            tie_word_embeddings=True, **extra)
    vision = dict(depth=vision_depth, num_heads=2, spatial_merge_size=2, temporal_patch_size=2)
    tokens = dict(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                  vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
                  tie_word_embeddings=True)
    if arch == "qwen2_vl":  # the vision tower's width is embed_dim; hidden_size is what the merger projects to
        return Qwen2VLConfig(text_config=text, vision_config=dict(
            vision, embed_dim=vision_embed_dim, hidden_size=hidden_size, mlp_ratio=2, patch_size=14), **tokens)
    # Qwen2.5-VL and Qwen3-VL: the vision width is hidden_size, the merger's output out_hidden_size
    vision.update(hidden_size=vision_embed_dim, intermediate_size=2 * vision_embed_dim, out_hidden_size=hidden_size)
    if arch == "qwen2_5_vl":  # window attention in every block but the full-attention ones
        return Qwen2_5_VLConfig(text_config=text, vision_config=dict(
            vision, patch_size=14, window_size=56, fullatt_block_indexes=[vision_depth - 1]), **tokens)
    if arch == "qwen3_vl":  # learned position embeddings on an 8x8 grid; deepstack features from block 0
        rope["mrope_interleaved"] = True
        return Qwen3VLConfig(text_config=dict(text, head_dim=head_dim), vision_config=dict(
            vision, patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[0]), **tokens)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")


def build_tiny_model(output_dir, seed=0, corpus=None, vocab_size=400, max_pixels=None, arch="qwen2_vl", **sizes):
    """Build tokenizer, image processor and a random tiny model of `arch`, save all three to `output_dir` (a text-only
    `arch`: tokenizer and model only, the chat template saved with the tokenizer)."""
    import torch

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(corpus, vocab_size, arch)
    auto_class = AutoModelForCausalLM if arch in TEXT_ARCHITECTURES else AutoModelForImageTextToText
    family = arch in FAMILY_ARCHITECTURES
    model = auto_class.from_config((build_family_config if family else build_config)(tokenizer, arch, **sizes))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if arch in TEXT_ARCHITECTURES:
        return output_dir
    if family:  # the processor saves its image processor, tokenizer and chat template
        build_family_processor(tokenizer, arch).save_pretrained(output_dir)
        return output_dir
    image_processor = build_image_processor(max_pixels=max_pixels, arch=arch)
    image_processor.save_pretrained(output_dir)
    with open(f"{output_dir}/chat_template.jinja", "w") as f:
        f.write(CHAT_TEMPLATES[arch])
    return output_dir


def build_tiny_vit(output_dir, seed=0, num_labels=10):
    """A tiny random ViT image classifier (the kind Eq. 2's semantic entropy uses) with its image processor,
    saved with save_pretrained: 32x32 input, patch 8, one layer."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.manual_seed(seed)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, num_labels=num_labels)
    ViTForImageClassification(config).save_pretrained(output_dir)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(output_dir)
    return output_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m demo.tiny_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", required=True, help="folder to write the checkpoint to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--arch", default="qwen2_vl", choices=ARCHITECTURES + TEXT_ARCHITECTURES + FAMILY_ARCHITECTURES,
                        help="the architecture (model_type); qwen2 and qwen3 are text-only (qwen2: Qwen2.5, "
                        "DeepSeek-R1-Distill-Qwen)")
    args = parser.parse_args()
    print("saved to", build_tiny_model(args.output_dir, seed=args.seed, arch=args.arch))

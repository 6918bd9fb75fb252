"""What differs between the vision-language model families, in one place (docs/model-families.md). All of them load
through the Auto classes (AutoModelForImageTextToText, AutoProcessor); the rest of the project calls the functions
here wherever a family's answer differs:

- the processor: without torchvision, AutoProcessor refuses the families whose processor holds a video processor
  (Qwen-VL, InternVL); `image_only_processor` builds the same class without it.
- `--max-pixels` (a pixel count: the paper's 1,003,520): Qwen-VL's size["longest_edge"] counts pixels; Idefics3's
  counts the edge of the resized image (split into crops), so the cap becomes an edge in whole crops, never above the
  checkpoint's own; InternVL crops an image into fixed-size tiles (plus a thumbnail), so the cap bounds the tiles
  (max_patches); Gemma 3 resizes every image to its fixed size (pan and scan off), whatever the cap.
- the encoded batch's pixel layout, which `take_rows` slices by row: Qwen-VL's flat patches (image_grid_thw);
  Idefics3's (rows, crops, 3, H, W) with pixel_attention_mask, already one block per row; Gemma 3's and InternVL's
  (tiles, 3, H, W), for which `encoded` records each row's tile count (TILES, dropped before the model sees it).
- token types: Qwen-VL's mm_token_type_ids, Gemma 3's token_type_ids (vlm.token_logprobs extends both with zeros
  over the completion, as generate does); none for Idefics3 and InternVL.
- the tokens to suppress in generate (`vision_token_ids`): the config's image token ids and each family's
  structure tokens.
- the final-logit transform (`logit_softcap`): none of these families' forward passes soft-caps its logits
  (transformers 5.23's Gemma3ForConditionalGeneration does not, though its text config has the field); a class
  listed in SOFTCAPPED does, and vlm.completion_logprobs then applies it per chunk.
- the language model (LoRA targets, FSDP): `model.get_decoder()` answers for every family (machinery/lora.py).
"""

import math

import numpy as np
import torch

QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# config.json's model_type of the other families: SmolVLM (Idefics3ForConditionalGeneration), Gemma 3, InternVL
OTHER_TYPES = ("idefics3", "gemma3", "internvl")
MODEL_TYPES = QWEN_TYPES + OTHER_TYPES

# config attributes that hold an image token id (Qwen-VL's names; Gemma 3's *_index)
CONFIG_TOKEN_NAMES = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id",
                      "image_token_index", "boi_token_index", "eoi_token_index")
# tokens each family's processor writes around its images, which a response must not contain either
STRUCTURE_TOKENS = {
    "qwen2_vl": ["<|vision_pad|>"], "qwen2_5_vl": ["<|vision_pad|>"], "qwen3_vl": ["<|vision_pad|>"],
    "idefics3": ["<fake_token_around_image>", "<global-img>", "<image>",
                 *[f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]],
    "gemma3": ["<start_of_image>", "<end_of_image>", "<image_soft_token>"],
    "internvl": ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
}
# classes whose forward soft-caps the final logits, cap * tanh(logits / cap), with config.final_logit_softcapping
SOFTCAPPED = ("Gemma2ForCausalLM", "Gemma3ForCausalLM", "PaliGemmaForConditionalGeneration")

TILES = "tiles_per_row"  # the encoded batch's key for each row's count of (tiles, 3, H, W) pixel blocks
TOKEN_TYPE_KEYS = ("mm_token_type_ids", "token_type_ids")  # Qwen-VL's, Gemma 3's
IMAGE_KEYS = ("pixel_values", "image_grid_thw", "pixel_attention_mask")  # what a forward pass takes of the images


def image_only_processor(base):
    """`base` (Qwen2VLProcessor, Qwen2_5_VLProcessor, Qwen3VLProcessor, InternVLProcessor) without its video processor.

    Without torchvision, transformers cannot build these families' video processors, so the normal processor
    refuses to load even though we never use video. The subclass keeps the base class's name, so a checkpoint saved
    from it still loads with the normal AutoProcessor where torchvision exists. It repeats the base class's other
    init parameters (InternVL's image_seq_length): from_pretrained passes only the saved settings that the
    `__init__` code names, and the base class's default would silently replace the checkpoint's.
    """
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, image_seq_length=None, **kwargs):
        if image_seq_length is not None:
            kwargs["image_seq_length"] = image_seq_length
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__})


def processor_base(model_type):
    """The processor class to build without its video processor for `model_type`, or None (its AutoProcessor needs
    no torchvision: Idefics3's and Gemma 3's load with their PIL image processors)."""
    from transformers.models.internvl.processing_internvl import InternVLProcessor
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    return {"qwen2_vl": Qwen2VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor, "qwen3_vl": Qwen3VLProcessor,
            "internvl": InternVLProcessor}.get(model_type)


def cap_pixels(processor, model_type, max_pixels):
    """Apply the image-size cap `max_pixels` (a pixel count) to `processor` as its family reads sizes."""
    size = dict(processor.image_processor.size)
    if model_type in QWEN_TYPES:  # size counts pixels
        size["longest_edge"] = max_pixels
        size["shortest_edge"] = min(size.get("shortest_edge") or max_pixels, max_pixels)
    elif model_type == "idefics3":  # the resized image's longest edge, a whole number of crops
        crop = processor.image_processor.max_image_size["longest_edge"]
        size["longest_edge"] = min(size["longest_edge"], max(crop, math.isqrt(max_pixels) // crop * crop))
    elif model_type == "internvl":  # a fixed tile size: the cap bounds the tiles an image is cropped into
        tile = size["height"] * size["width"]
        processor.image_processor.max_patches = min(processor.image_processor.max_patches, max(1, max_pixels // tile))
    processor.image_processor.size = size  # Gemma 3: a fixed size, whatever the cap


def max_image_pixels(processor):
    """The most pixels the processor keeps of an image where its size counts pixels (Qwen-VL's longest_edge); None
    for a text-only model's processor and for the other families, whose size is an edge (images are then decoded
    whole and the processor resizes them)."""
    if processor.image_processor is None or "image_grid_thw" not in processor.image_processor.model_input_names:
        return None
    return dict(processor.image_processor.size).get("longest_edge")


def vision_token_ids(model, processor):
    """Ids a response must never contain: a sampled image token would make the next forward look for an image that
    is not there (and crash), and a structure token would start one."""
    ids = {getattr(model.config, n) for n in CONFIG_TOKEN_NAMES if getattr(model.config, n, None) is not None}
    for token in STRUCTURE_TOKENS.get(model.config.model_type, []):
        token_id = processor.tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != processor.tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(ids)


def freeze_vision(model):
    """--freeze-vision for every family: only the language model (get_decoder(), its embeddings included) and the
    output layer stay trainable; the vision tower and its projector (Qwen's `visual` with its merger, the others'
    vision tower and connector / multi_modal_projector) are frozen, whatever each family names them."""
    trainable = {id(p) for p in model.get_decoder().parameters()}
    trainable |= {id(p) for p in model.get_output_embeddings().parameters()}
    for parameter in model.parameters():
        if id(parameter) not in trainable:
            parameter.requires_grad_(False)
    return model


def logit_softcap(model):
    """The final-logit soft-cap `model`'s forward applies (config.final_logit_softcapping), or None."""
    return model.config.get_text_config().final_logit_softcapping if type(model).__name__ in SOFTCAPPED else None


def tile_token(processor):
    """(token id, tokens per tile) by which a (tiles, 3, H, W) family's prompt holds its tiles, or None."""
    name = type(processor).__name__
    if name == "Gemma3Processor":  # image_seq_length soft tokens per image, one tile each (no pan and scan)
        return processor.tokenizer.image_token_id, processor.image_seq_length
    if name == "InternVLProcessor":  # image_seq_length <IMG_CONTEXT> tokens per tile
        return processor.image_token_id, processor.image_seq_length
    return None


def per_prompt(processor, prompts, images):
    """The flat list `images` as one list per prompt, for the processors that refuse a flat list with several
    prompts (Gemma 3's: it counts its <start_of_image> tokens per prompt); the list itself for the others."""
    if type(processor).__name__ != "Gemma3Processor" or not images:
        return images
    counts = [prompt.count(processor.boi_token) for prompt in prompts]
    starts = np.cumsum(counts) - counts
    return [images[start:start + count] for start, count in zip(starts, counts)]


def encoded(processor, batch):
    """The processor's output as a dict; for a (tiles, 3, H, W) family, with each row's tile count under TILES."""
    batch = dict(batch)
    batch.pop("num_crops", None)  # Gemma 3's pan-and-scan count: not a model input
    found = tile_token(processor)
    if found and "pixel_values" in batch:
        token_id, per_tile = found
        batch[TILES] = (batch["input_ids"] == token_id).sum(1) // per_tile
    return batch


def model_inputs(inputs):
    """What of an encoded batch the model takes (not TILES)."""
    return {key: value for key, value in inputs.items() if key != TILES}


def images_per_row(inputs):
    """How many images each encoded Qwen-VL row holds: its runs of image tokens (mm_token_type_ids == 1; the vision
    start/end tokens around each image are text tokens, so two images never form one run)."""
    is_image = inputs["mm_token_type_ids"] == 1
    starts = is_image.clone()
    starts[:, 1:] &= ~is_image[:, :-1]
    return starts.sum(1)


def take_rows(inputs, rows):
    """The given rows of an encoded batch, each row keeping its own images' blocks of `pixel_values`.

    Qwen-VL: `pixel_values` is one flat (patches, dim) tensor for the whole batch; image j owns
    image_grid_thw[j].prod() consecutive patches, and a row's images are consecutive (images_per_row of them; none
    for a text-only row). Gemma 3, InternVL: row r owns TILES[r] consecutive (3, H, W) tiles. Idefics3: pixel_values
    and pixel_attention_mask have a block per row already. Repeating a prompt G times must repeat its block, not
    tile the flat tensor (a known bug elsewhere): `take_rows(inputs, [0]*G + [1]*G)` does the former.
    """
    rows = torch.as_tensor(rows, dtype=torch.long)
    per_row = ("input_ids", "attention_mask", *TOKEN_TYPE_KEYS, TILES)
    if "pixel_attention_mask" in inputs:  # Idefics3
        per_row += ("pixel_values", "pixel_attention_mask")
    out = {key: inputs[key][rows] for key in per_row if key in inputs}
    if TILES in inputs:
        return dict(out, **take_blocks(inputs["pixel_values"], inputs[TILES], rows))
    if "image_grid_thw" not in inputs:  # no row has an image (or Idefics3, done)
        return out
    counts = images_per_row(inputs).tolist()
    if sum(counts) != len(inputs["image_grid_thw"]):
        raise ValueError(f"{sum(counts)} images in the token rows, {len(inputs['image_grid_thw'])} in the grid")
    first = np.cumsum(counts) - counts
    image_index = [j for r in rows.tolist() for j in range(first[r], first[r] + counts[r])]
    if not image_index:  # the chosen rows are all text-only
        return out
    patches = inputs["image_grid_thw"].prod(-1)
    starts = torch.cumsum(patches, 0) - patches
    out["image_grid_thw"] = inputs["image_grid_thw"][torch.as_tensor(image_index, dtype=torch.long)]
    out["pixel_values"] = inputs["pixel_values"][torch.cat([torch.arange(starts[j], starts[j] + patches[j])
                                                            for j in image_index])]
    return out


def take_blocks(pixel_values, tiles, rows):
    """{"pixel_values": the chosen rows' tiles in row order} (rows own consecutive blocks of `tiles` tiles); {} when
    the rows have none."""
    if int(tiles.sum()) != len(pixel_values):
        raise ValueError(f"{int(tiles.sum())} image tiles in the token rows, {len(pixel_values)} in pixel_values")
    starts = torch.cumsum(tiles, 0) - tiles
    index = [torch.arange(starts[r], starts[r] + tiles[r]) for r in rows.tolist() if tiles[r]]
    return {"pixel_values": pixel_values[torch.cat(index)]} if index else {}

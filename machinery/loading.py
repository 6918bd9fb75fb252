"""Loading what a run needs from the Hugging Face hub or a local folder: the policy model (Qwen2-VL, Qwen2.5-VL,
Qwen3-VL, SmolVLM (Idefics3), Gemma 3, InternVL: model_families/families.py; or a text-only Qwen2/Qwen2.5/Qwen3
causal LM, machinery/text_models.py), its processor (with the no-torchvision fallback), Eq. 2's optional image
classifier, and the device and dtype. Every failure is one line (ModelError): what was asked, what went wrong, what
to do.
"""

import json
import os

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
from transformers.utils import is_torchvision_available

from machinery import text_models
from model_families import families

VLM_MODEL_TYPES = families.MODEL_TYPES
SUPPORTED_MODEL_TYPES = VLM_MODEL_TYPES + text_models.TEXT_MODEL_TYPES
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def pick_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name, device):
    """The compute dtype: float32 on CPU (bf16 matmuls are slow there), bfloat16 on CUDA (the paper's)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


image_only_processor = families.image_only_processor  # Qwen-VL's and InternVL's without video


class ModelError(ValueError):
    """A --model that cannot be used; str() is one line: what was asked, what went wrong, what to do."""


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def hub_failure(name, error):
    """Why fetching `name` from the Hugging Face hub failed, read from the chain of exceptions transformers raised."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    download = f"download it with `hf download {name} --local-dir DIR` where there is internet, then pass --model DIR"
    if any(isinstance(e, GatedRepoError) for e in chain):
        return "it is a gated model: accept its licence on its hub page, log in with `hf auth login`, then retry"
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return "no such model on the Hugging Face hub: check the id (a private model needs `hf auth login`)"
    if any(isinstance(e, LocalEntryNotFoundError) for e in chain):
        if constants.HF_HUB_OFFLINE:
            return f"it is not in the local cache and offline mode is on (HF_HUB_OFFLINE): {download}"
        return f"huggingface.co cannot be reached and it is not in the local cache: {download}"
    return f"{first_line(chain[0])}: {download}"


def check_model(name):
    """Stop early, with one line, on a --model that cannot work; returns its model type.

    A local folder is read offline (the hub is contacted only for a hub id): it must hold a config.json of a
    supported architecture and a weights file.
    """
    local = os.path.isdir(name)
    if local:
        config_path = os.path.join(name, "config.json")
        if not os.path.isfile(config_path):
            raise ModelError(f"--model {name}: not a model folder (no config.json); pass a folder written by "
                             "save_pretrained, or a hub id such as Qwen/Qwen2-VL-2B-Instruct")
        try:
            with open(config_path) as f:
                model_type = json.load(f).get("model_type")
        except (OSError, ValueError, AttributeError) as error:
            raise ModelError(f"--model {name}: unreadable config.json ({first_line(error)})") from None
    else:
        try:
            model_type = AutoConfig.from_pretrained(name).model_type
        except (OSError, ValueError) as error:
            raise ModelError(f"--model {name}: cannot load it from the hub: {hub_failure(name, error)}") from None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelError(f"--model {name}: architecture {model_type!r} is not supported (fast-grpo trains "
                         f"{', '.join(SUPPORTED_MODEL_TYPES)}); pick a Qwen2-VL, Qwen2.5-VL, Qwen3-VL, SmolVLM (Idefics3), "
                         "Gemma 3 or InternVL (-hf) checkpoint, "
                         "or a text-only Qwen2.5, Qwen3 or DeepSeek-R1-Distill-Qwen one")
    if local and not any(os.path.isfile(os.path.join(name, weights)) for weights in WEIGHT_FILES):
        raise ModelError(f"--model {name}: no weights file ({' / '.join(WEIGHT_FILES[::2])}); the folder is "
                         "incomplete: copy or download it again")
    return model_type


def loading(name, load, flag="--model"):
    """load() with any failure turned into a one-line ModelError (for a hub id: why the hub failed)."""
    try:
        return load()
    except (OSError, ValueError, RuntimeError, ImportError, SafetensorError) as error:  # corrupt or incompatible files
        if not os.path.isdir(name) and isinstance(error, OSError):
            raise ModelError(f"{flag} {name}: cannot load it from the hub: {hub_failure(name, error)}") from None
        raise ModelError(f"{flag} {name}: cannot load it ({type(error).__name__}: {first_line(error)})") from None


def load_image_classifier(name, device="cpu"):
    """Eq. 2's classifier (the paper uses a ViT, e.g. google/vit-base-patch16-224): (model, image processor),
    loaded with AutoModelForImageClassification and AutoImageProcessor, in eval mode on `device`."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    local = os.path.isdir(name)
    if local and not os.path.isfile(os.path.join(name, "config.json")):
        raise ModelError(f"--complexity-model {name}: not a model folder (no config.json)")
    return loading(name, lambda: (
        AutoModelForImageClassification.from_pretrained(name, local_files_only=local).to(device).eval(),
        AutoImageProcessor.from_pretrained(name, local_files_only=local)), flag="--complexity-model")


def is_text_model(name):
    """Whether the model `name` (a folder or a hub id) is a text-only causal LM (text_models.TEXT_MODEL_TYPES)."""
    if os.path.isfile(os.path.join(name, "config.json")):  # a folder is read offline
        with open(os.path.join(name, "config.json")) as f:
            return json.load(f).get("model_type") in text_models.TEXT_MODEL_TYPES
    return AutoConfig.from_pretrained(name).model_type in text_models.TEXT_MODEL_TYPES


def check_text_model(name, examples, freeze_vision=False):
    """For a text-only --model, stop with one line, before it loads, on what it cannot do: questions with images
    (it would never see them) and --freeze-vision (it has no vision tower). Other models pass."""
    if not loading(name, lambda: is_text_model(name)):
        return
    if freeze_vision:
        raise ModelError(f"--freeze-vision: --model {name} is a text-only model, it has no vision tower")
    with_images = sum(example.get("image") is not None for example in examples)
    if with_images:
        raise ModelError(f"--model {name} is a text-only model and {with_images} of the {len(examples)} questions "
                         "have images: pass text-only data, or a vision-language model")


def load_processor(name, max_pixels=None):
    """AutoProcessor, falling back to an image-only processor when torchvision is missing; for a text-only model
    its tokenizer as a text_models.TextProcessor (`max_pixels` does not apply)."""
    if loading(name, lambda: is_text_model(name)):
        return loading(name, lambda: text_models.load_processor(name, os.path.isdir(name)))
    return loading(name, lambda: build_processor(name, max_pixels))


def build_processor(name, max_pixels):
    local = os.path.isdir(name)  # a local folder never contacts the hub
    model_type = AutoConfig.from_pretrained(name, local_files_only=local).model_type
    try:
        processor = AutoProcessor.from_pretrained(name, local_files_only=local)
    except (ImportError, OSError):  # no torchvision: the video processor class refuses to build or load
        if is_torchvision_available():
            raise
        base = families.processor_base(model_type)
        if base is None:
            raise
        processor = image_only_processor(base).from_pretrained(name, local_files_only=local)
    processor.tokenizer.padding_side = "left"  # generation continues every row from its last column
    if max_pixels is not None:  # each family reads its size its own way
        families.cap_pixels(processor, model_type, max_pixels)
    return processor


max_image_pixels = families.max_image_pixels  # Qwen-VL's size["longest_edge"]; None for the others


def load_model(name, dtype=torch.float32, device="cpu"):
    """The policy model: AutoModelForImageTextToText, or AutoModelForCausalLM for a text-only model."""
    local = os.path.isdir(name)
    auto_class = AutoModelForCausalLM if loading(name, lambda: is_text_model(name)) else AutoModelForImageTextToText
    return loading(name, lambda: auto_class.from_pretrained(name, dtype=dtype, local_files_only=local).to(device))

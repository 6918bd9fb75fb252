"""Text-only causal language models (Qwen2.5, Qwen3, DeepSeek-R1-Distill-Qwen): AutoModelForCausalLM with its
AutoTokenizer behind the small part of a processor's interface vlm.py uses, so training and evaluation run them
through the same calls as the vision-language models (docs/text-models.md).

What differs from a VLM processor, and why:
- the chat template gets the user turn as one string: text-only templates (Qwen2.5's, DeepSeek-R1-Distill's)
  concatenate `message['content']`, so the list of parts vlm.prompt_content builds would be refused or printed as
  its repr. Without a chat template (a base model) the prompt is the user turn's text and a newline.
- no image is ever accepted: a question with an image stops with one line instead of being silently dropped.
- the encoded batch has no `mm_token_type_ids` (a causal LM's `generate` refuses unknown inputs); vlm.py reads
  that key only where the batch has it.
"""

TEXT_MODEL_TYPES = ("qwen2", "qwen3")  # config.json's model_type: Qwen2/2.5 and DeepSeek-R1-Distill-Qwen, Qwen3


class TextProcessor:
    """A tokenizer standing in for a VLM processor: apply_chat_template, __call__, batch_decode, save_pretrained,
    `.tokenizer`; `image_processor` is None (no image size to cap)."""

    image_processor = None

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        """The prompt text of `messages` whose content may be a list of parts (vlm.prompt_content's): the parts'
        text joined into one string; the tokenizer's chat template around it, or the plain text without one."""
        messages = [dict(message, content=message_string(message["content"])) for message in messages]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                      tokenize=tokenize)
        return "".join(message["content"] + "\n" for message in messages)

    def __call__(self, text, images=None, return_tensors="pt", padding=True):
        """Tokenise prompts; a chat-templated prompt already holds its special tokens (so none is added, as
        transformers' apply_chat_template does), a plain one gets the tokenizer's own (a BOS where it adds one)."""
        if images:
            raise ValueError("a text-only model cannot take images: the data has a question with an image")
        return self.tokenizer(text, return_tensors=return_tensors, padding=padding,
                              add_special_tokens=not self.tokenizer.chat_template)

    def batch_decode(self, ids, **kwargs):
        return self.tokenizer.batch_decode(ids, **kwargs)

    def save_pretrained(self, folder):
        return self.tokenizer.save_pretrained(folder)


def message_string(content):
    """A message's content as one string: a string as it is; text parts joined (an image part is refused)."""
    if isinstance(content, str):
        return content
    if any(part.get("type") != "text" for part in content):
        raise ValueError("a text-only model cannot take images: the data has a question with an image")
    return "".join(part["text"] for part in content)


def load_processor(name, local):
    """The model's AutoTokenizer, left-padded (generation continues every row from its last column), as a
    TextProcessor."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    if tokenizer.pad_token is None:  # some base models ship none; padding is masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return TextProcessor(tokenizer)

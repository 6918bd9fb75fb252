"""The vision-language model families and what differs between them (families): Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
SmolVLM (Idefics3), Gemma 3 and InternVL, in one table that loading, vlm.py and LoRA read (docs/model-families.md)."""

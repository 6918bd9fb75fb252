"""The run around the algorithm, skip it on a first reading: set-up and resume (harness), model loading, checkpoints,
logs, stopping (signals, out of memory), torchrun, FSDP and LoRA. None of it changes what a step computes."""

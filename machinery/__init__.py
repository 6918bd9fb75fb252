"""The run around the algorithm, skip it on a first reading: the command line (command_line), set-up and resume
(harness), model loading (loading), checkpoints, logs, stopping (signals, out of memory), torchrun (distributed),
FSDP and LoRA. None of it changes what a step computes."""

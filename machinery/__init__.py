"""The run around the algorithm, skip it on a first reading: the command line (command_line), set-up, resume and
the learning-rate schedule (harness), model loading (loading), checkpoints, logs, the live view (tracking:
TensorBoard, wandb, trackio), stopping (signals, out of memory), torchrun (distributed), FSDP and LoRA. None of it
changes what a step computes."""

"""Train: one run of next-token prediction. Its settings and presets, setting up model, data and optimizers,
the learning-rate schedule, Muon, the loop around one training step, ranks under torchrun, fine-tuning, and the
command line (`python -m engine.train`)."""

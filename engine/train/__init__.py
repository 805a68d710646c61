"""Train: one run of next-token prediction. Its settings and presets, setting up model, data and optimizers,
the learning-rate schedule and time budget, Muon, the training step and the loop around it, evaluations and
samples, ranks under torchrun, fine-tuning, and the command line (`python -m engine.train`)."""

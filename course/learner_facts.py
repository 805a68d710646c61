"""Numbers from the learner's own work that a numeric quiz question may take as its answer (`answer_from`).

The validator only checks a quiz names one of these; the UI computes them from what the learner's widgets saved
(ui/facts.py), so a question can ask about the learner's own run, corpus or tokenizer.
"""

from __future__ import annotations

LEARNER_FACTS: dict[str, str] = {
    "run.start_loss": "validation loss at step 0 of the learner's training run",
    "run.final_val_loss": "last validation loss of the learner's training run",
    "run.val_loss_drop": "how much the validation loss fell during the learner's run",
    "run.final_val_bits": "the last validation loss of the learner's run in bits per character (nats / ln 2)",
    "run.final_val_choices": "e^(last validation loss) of the learner's run: how many equally likely characters "
                             "that loss amounts to",
    "dedup.removed": "how many documents the learner's last deduplication removed (exact + near)",
    "dedup.near_removed": "how many near-duplicates the learner's last deduplication removed",
    "dedup.removed_percent": "the share of the corpus's documents, in percent, that the learner's last "
                             "deduplication removed",
    "corpus.documents": "how many documents the learner's chosen corpus has",
    "bpe.vocab_size": "the vocabulary size of the BPE tokenizer the learner trained",
    "bpe.chars_per_token": "characters per token of the learner's BPE on their corpus",
    "bpe.start_loss_4x_vocab": "the loss a model should start at with four times the learner's BPE vocabulary: "
                               "ln(4 x vocabulary size)",
    "run.achieved_tflops": "the training throughput of the learner's run, in TFLOP/s (model FLOPs per second)",
    "run.gpt3_years": "years the learner's machine would take for GPT-3's training compute at their run's throughput",
    "run.parameters": "the parameter count of the learner's lesson-7 model (the tied embedding counted once)",
    "run.bf16_mb": "megabytes (10^6 bytes) the learner's lesson-7 model's weights take at 2 bytes per parameter",
}

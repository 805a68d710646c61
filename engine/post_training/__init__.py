"""After pre-training: the chat template and its special tokens, supervised fine-tuning on instruction pairs, LoRA
adapters, and learning from a preference pair (DPO). Lesson 11 draws each."""

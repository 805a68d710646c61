"""Transform: text into numbers and a model that learns from them. Tokenizers (characters and BPE), the
next-token labels the text carries, counting baselines, the training windows, the GPT itself, and gradient descent
on one weight."""

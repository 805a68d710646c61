"""Retrieve: knowledge at answer time. Documents cut into chunks, sentence embeddings, a vector store and a
BM25 keyword index, and retrieval-augmented generation's first half: find, then assemble the prompt."""

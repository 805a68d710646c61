"""The live engine: plain Python and torch, no Streamlit, usable from a script or a test.

Its folders are the stages of the pipeline the course teaches, in the order a byte of text meets them: extract
(corpora, uploads, cleaning, duplicates) -> transform (tokenization, the model, the data it reads) -> train (the
loop and what sets it up) -> runs (training in the background) -> load (checkpoints, weights files) -> retrieve
(search at answer time). look_inside and cost show what a trained model does and what training cost. A stage
imports only stages before it, except where docs/architecture.md names the exception and why.
"""

"""The live engine: plain Python + torch, no Streamlit. Stages follow the pipeline the course teaches:
extract (corpus) -> transform (tokenization, model, train) -> load (checkpoints) -> retrieve."""

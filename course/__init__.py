"""The course as data: content schema (pydantic), loader and validator, grading, and the progress store.

Plain Python: never imports Streamlit, torch or the engine, so the validator runs anywhere in a second.
"""

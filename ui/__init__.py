"""The Streamlit layer: pages, quiz widgets and one module per live widget. The only place Streamlit is imported."""

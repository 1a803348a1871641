"""The Streamlit dashboard: Gold readers (deltalake) and storage credentials (SAS)."""

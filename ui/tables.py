"""A table of rows with a CSV download of exactly those rows: the instructor's pages draw every table this way."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import streamlit as st

from ui import private_files


def csv_text(rows: Sequence[dict[str, object]]) -> str:
    """Rows as CSV text, the header from the first row's keys.

    >>> csv_text([{"name": "Ann", "lessons": 3}])
    'name,lessons\\r\\nAnn,3\\r\\n'
    """
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def table_with_csv(rows: list[dict[str, object]], name: str, key: str, **column_config) -> None:
    """The rows as a table (learner text shown as text, never Markdown), and a button that downloads them as
    `name`.csv; a sentence instead where there are no rows yet."""
    if not rows:
        st.info("Nothing yet: this fills in as the class works through the course.")
        return
    st.dataframe(rows, hide_index=True, width="stretch", column_config=column_config or None)
    private_files.download_button("Download as CSV", csv_text(rows), file_name=f"{name}.csv", mime="text/csv",
                                  icon=":material/download:", key=f"{key}-csv")

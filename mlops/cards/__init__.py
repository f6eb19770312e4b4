"""Model cards: one JSON document per trained version, and the Markdown + PNG plots rendered from it.

The JSON (metadata/cards/<version>.json) is the card: Model Card Toolkit sections (model_details,
model_parameters, quantitative_analysis, considerations) plus `gate` and `lineage`. It is built from the
manifest, the gate record, the audit log and the team-edited config/model-card.json, and nothing else,
so the same inputs always give the same bytes. The Markdown (Mitchell et al.'s headings) and the plots
are pure functions of that JSON: `mlops card render` rebuilds them byte for byte (docs/model-cards.md).

- `build`: the card JSON from the records (`assemble` is the pure part);
- `markdown`: the card's Markdown, and the metric diff the PR report shares;
- `plots`: the PNGs;
- `mct`: the Model Card Toolkit export (metadata/cards/<version>/mct.json), `hub`: the Hugging Face front matter,
  `extras`: hyper-parameters, importance, how to load, citation;
- `store`: paths, schema validation, writing, loading, re-rendering and checking the files.

Everything other modules use is importable from `mlops.cards` itself.
"""

from mlops.cards.build import CARD_FORMAT, PLOTS, TEAM_FILE, assemble, build_card, find_audit_entries
from mlops.cards.markdown import diff_rows, metrics_diff_markdown, render_markdown
from mlops.cards.plots import render_plots
from mlops.cards.store import (
    SCHEMA_FILE,
    all_card_versions,
    card_json_path,
    card_md_path,
    check,
    load_card,
    mct_path,
    plot_path,
    render,
    rendered_files,
    schema,
    validate,
    write_card,
    write_for_version,
    write_for_versions,
)

__all__ = [
    "CARD_FORMAT",
    "PLOTS",
    "SCHEMA_FILE",
    "TEAM_FILE",
    "all_card_versions",
    "assemble",
    "build_card",
    "card_json_path",
    "card_md_path",
    "check",
    "diff_rows",
    "find_audit_entries",
    "load_card",
    "mct_path",
    "metrics_diff_markdown",
    "plot_path",
    "render",
    "render_markdown",
    "render_plots",
    "rendered_files",
    "schema",
    "validate",
    "write_card",
    "write_for_version",
    "write_for_versions",
]

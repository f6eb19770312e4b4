"""Where a card's files live, and writing, loading, re-rendering and checking them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.cards.build import PLOTS, build_card
from mlops.cards.markdown import render_markdown
from mlops.cards.mct import EXPORT_NAME, mct_export
from mlops.cards.plots import render_plots
from mlops.config import Config
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

SCHEMA_FILE = "model-card-document.schema.json"


# ---------------------------------------------------------------------------------------------- paths


def card_json_path(repo: Repo, version: str) -> Path:
    return repo.cards / f"{version}.json"


def card_md_path(repo: Repo, version: str) -> Path:
    return repo.cards / f"{version}.md"


def plot_path(repo: Repo, version: str, name: str) -> Path:
    return repo.cards / version / f"{name}.png"


def mct_path(repo: Repo, version: str) -> Path:
    """The card as a Model Card Toolkit document (schema v0.0.2), rendered from the card JSON."""
    return repo.cards / version / EXPORT_NAME


def all_card_versions(repo: Repo) -> list[str]:
    if not repo.cards.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in repo.cards.glob("*.json"))


# ---------------------------------------------------------------------------------------------- validating


def schema(repo: Repo) -> dict[str, Any]:
    path = repo.schemas_dir / SCHEMA_FILE
    if not path.exists():
        # Forks created before cards existed: fall back to the schema shipped with the package checkout.
        path = Path(__file__).resolve().parents[2] / "config" / "schemas" / SCHEMA_FILE
    return jsonio.read_json(path, "schema")


def validate(card: Any, repo: Repo, where: str) -> None:
    """BadInput naming the JSON pointer of the first violation of the card schema."""
    from mlops.config import require_valid

    require_valid(
        schema(repo), card, where, "regenerate the card with `mlops card build VERSION` instead of editing it"
    )


# ---------------------------------------------------------------------------------------------- writing


def rendered_files(repo: Repo, card: dict[str, Any]) -> dict[Path, bytes]:
    """Every file a card consists of (JSON, Markdown, plots, MCT export) and its exact bytes."""
    version = card["version"]
    try:
        files = {
            card_json_path(repo, version): jsonio.dumps(card).encode("utf-8"),
            card_md_path(repo, version): render_markdown(card).encode("utf-8"),
        }
        plots = render_plots(card)
        for name, data in plots.items():
            files[plot_path(repo, version, name)] = data
        files[mct_path(repo, version)] = jsonio.dumps(mct_export(card, plots)).encode("utf-8")
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        # The schema leaves some generated parts optional; a hand edit that removes one must be
        # one clear line, not a traceback.
        raise BadInput(
            repo.rel(card_json_path(repo, version)),
            f"cannot be rendered: a generated field is missing or malformed ({type(exc).__name__}: {str(exc)[:80]})",
            f"restore it (`mlops card build {version}` rebuilds the card from the model's records), "
            "and edit only the team-written parts",
        ) from None
    return files


def _write(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        if not path.exists() or path.read_bytes() != data:  # unchanged files keep their mtime (quiet rebuilds)
            jsonio.atomic_write_bytes(path, data)


def write_card(cfg: Config, version: str) -> dict[str, Any]:
    """Build, validate and write one version's card; returns {'json', 'markdown', 'plots'} relative paths."""
    repo = cfg.repo
    card = build_card(cfg, version)
    validate(card, repo, repo.rel(card_json_path(repo, version)))
    files = rendered_files(repo, card)
    _write(files)
    return {
        "json": repo.rel(card_json_path(repo, version)),
        "markdown": repo.rel(card_md_path(repo, version)),
        "plots": [repo.rel(plot_path(repo, version, n)) for n in PLOTS],
        "mct": repo.rel(mct_path(repo, version)),
    }


def write_for_versions(cfg: Config, versions: list[str]) -> None:
    """Write several versions' cards, one after the other; one that fails warns and the others are still written.

    Then each version's card, gate record, reference profile and data set are logged to its MLflow run.
    """
    for version in versions:
        write_for_version(cfg, version)
    from mlops import tracking

    tracking.log_records(cfg.repo, versions, cfg.dataset.name)


def write_for_version(cfg: Config, version: str) -> dict[str, Any]:
    """Called by `mlops train` for every candidate: a card failure warns, it never fails a recorded training run."""
    try:
        return write_card(cfg, version)
    except Exception as exc:  # noqa: BLE001 - the model, gate and audit are already recorded; the card can be rebuilt
        gha.warn(
            f"model card for {version} not written ({type(exc).__name__}: {exc}); "
            f"rebuild it with `mlops card build {version}`"
        )
        return {"error": f"{type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------------------------------------- reading back


def load_card(repo: Repo, version: str) -> dict[str, Any]:
    path = card_json_path(repo, version)
    if not path.exists():
        raise BadInput(repo.rel(path), "no card for this version", f"run `mlops card build {version}`")
    card = jsonio.read_json(path, "model card")
    validate(card, repo, repo.rel(path))
    if card.get("version") != version:
        raise BadInput(
            repo.rel(path), f"holds the card of {card.get('version')!r}", "rebuild it with `mlops card build`"
        )
    return card


def render(repo: Repo, version: str) -> list[str]:
    """Regenerate the Markdown, plots and MCT export from the committed card JSON; returns the files that changed."""
    card = load_card(repo, version)
    files = {p: b for p, b in rendered_files(repo, card).items() if p != card_json_path(repo, version)}
    changed = [repo.rel(p) for p, b in files.items() if not p.exists() or p.read_bytes() != b]
    _write(files)
    return changed


def check(repo: Repo, version: str) -> None:
    """CheckFailed when the committed Markdown, plots or MCT export differ from what the card JSON renders to."""
    card = load_card(repo, version)
    stale = []
    for path, data in rendered_files(repo, card).items():
        if path == card_json_path(repo, version):
            continue
        if not path.exists():
            stale.append(f"{repo.rel(path)} (missing)")
        elif path.read_bytes() != data:
            stale.append(repo.rel(path))
    if stale:
        raise CheckFailed(
            f"model card {version}: {', '.join(stale)} differ from what {repo.rel(card_json_path(repo, version))} "
            f"renders to; run `mlops card render {version}` and commit the changes"
        )

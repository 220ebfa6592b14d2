"""The run report: ``runs/<run>/report.html``, one self-contained page (figures inlined) that a
person opens first. Reads the run store and the figures drawn from it, nothing else.

What it shows: the configuration; the ensemble (models, families, settings); per stage what
was computed and how long it took (each group's provenance); the structure figures and a table
of the clusters; the whole-latent-space figure and group means; the measure comparison (its
figures and the measures' agreement); the models left out and why;
how to open each group in xarray.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..kernels import CLUSTER_MEASURES
from ..store import open_dataset, open_run
from ..store.models import read_models

__all__ = ["write_report", "GROUPS", "structure_section", "latents_section", "measures_section", "fusion_section",
           "so2_section"]

GROUPS = ("fingerprint", "models", "embeddings", "channels", "pairs", "structure", "traversals",
          "dataset_embeddings", "latents", "spaces", "measures", "so2_learners", "so2_fusion", "fusion")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
.note { color: #666; font-size: 0.9em; }
"""


def _e(x: Any) -> str:
    """Text content, escaped (quotes stay as they are: they are safe outside attributes)."""
    return html.escape(str(x), quote=False)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    def cell(v: Any) -> str:
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            text = f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)
            return f'<td class="num">{_e(text)}</td>'
        return f"<td>{_e(v)}</td>"

    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _figures(by_name: dict[str, Path], shown: Sequence[tuple[str, str]],
             folded: Sequence[tuple[str, str]] = ()) -> list[str]:
    """A section's figures that were drawn, each (name, what it shows): ``shown`` inline, ``folded`` behind a
    summary that says what it shows (the image's alt text too)."""
    out = [_image(by_name[key], alt) for key, alt in shown if key in by_name]
    return out + [f"<details><summary>{_e(alt)}</summary>{_image(by_name[key], alt)}</details>"
                  for key, alt in folded if key in by_name]


def _groups(root: Any) -> list[str]:
    """The store's groups: those of :data:`GROUPS` in that order, then any other (a registered stage's)."""
    present = sorted(name for name, _ in root.groups() if not name.startswith("."))
    return [g for g in GROUPS if g in present] + [g for g in present if g not in GROUPS]


def _provenance(root: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(g, dict(root[g].attrs)) for g in _groups(root) if "run_id" in root[g].attrs]


def _ensemble(models: list[dict[str, Any]]) -> str:
    if not models:
        return "<p>No models recorded.</p>"
    settings = Counter((m["dataset"], m["family"], f"{m['hyperparameter']}={m['hyperparameter_value']:g}"
                        if m["hyperparameter"] else "", m["source"]) for m in models)
    out = f"<p>{len(models)} models.</p>" + _table(("dataset", "family", "setting", "source", "models"),
                                                  [(*k, n) for k, n in sorted(settings.items())])
    if len(models) <= 60:
        out += "<details><summary>every model</summary>" + _table(
            ("model", "family", "setting", "seed", "path"),
            [(m["name"], m["family"], f"{m['hyperparameter']}={m['hyperparameter_value']:g}" if m["hyperparameter"]
              else "", m["seed"], m["path"]) for m in models]) + "</details>"
    return out


def structure_section(store_path: str, by_name: dict[str, Path]) -> str:
    """The channel structure: its figure, the cluster tables, the other figures folded."""
    parts = ["<h2>Channel structure</h2>", *_figures(by_name, (("structure_vi", "the channel structure figure (VI)"),))]
    parts.append(_clusters(str(store_path)))
    verdict = open_dataset(str(store_path), "structure").attrs.get("fingerprint_verdict")
    if verdict:
        parts.append(f'<p class="fingerprint-size">The fingerprint set\'s size: {_e(verdict)}.</p>')
        parts += _figures(by_name, (("fingerprint_size", "the structure at nested subsets of the fingerprint set"),))
    parts += _figures(by_name, (), (("structure_nmi", "the channel structure figure (NMI)"),
                                    ("members_vi", "the clusters' members per setting (VI)"),
                                    ("members_nmi", "the clusters' members per setting (NMI)")))
    return "".join(parts)


def _clusters(store_path: str) -> str:
    st = open_dataset(store_path, "structure").load()
    parts = [f"<p>{st.attrs.get('n_channels_kept')} of {st.attrs.get('n_channels_total')} channels carry at least "
             f"{st.attrs.get('info_threshold_bits')} bits; OPTICS min_samples {st.attrs.get('min_samples')}.</p>"]
    for measure in CLUSTER_MEASURES:
        s = st.sel(measure=measure)
        rows = []
        for k in range(s.sizes["cluster"]):
            if int(s["cluster_size"].values[k]) == 0:
                continue
            best = str(s["cluster_best_factor"].values[k])
            at = int(np.nanargmax(s["cluster_nmi_factor"].values[k])) if best else 0
            nmi = float(s["cluster_nmi_factor"].values[k, at]) if best else float("nan")
            se = float(s["cluster_nmi_factor_se"].values[k, at]) if best and "cluster_nmi_factor_se" in s else np.nan
            stable = float(s["cluster_stability"].values[k]) if "cluster_stability" in s else np.nan
            above = float(s["cluster_above_null"].values[k]) if "cluster_above_null" in s else np.nan
            rows.append((k, int(s["cluster_size"].values[k]), int(s["cluster_models"].values[k]), best or "-",
                         f"{nmi:.3g} ± {se:.2g}" if np.isfinite(se) else nmi, float(s["cluster_coherence"].values[k]),
                         stable if np.isfinite(stable) else "-", above if np.isfinite(above) else "-"))
        noise = int((s["label"].values < 0).sum())
        parts.append(f"<h3>Clusters by {'VI' if measure == 'vi' else 'NMI'}</h3>")
        parts.append(_table(("cluster", "channels", "models spanned", "best-matching factor", "its NMI",
                             "coherence", "stability", "pairs above null"), rows, cls=f"clusters clusters-{measure}"))
        draws = int(st.attrs.get("stability_draws", 0) or 0)
        parts.append(f'<p class="note">{noise} channels are OPTICS noise. Its NMI: the members\' mean NMI with the '
                     "factor, ± the mean of their standard errors (a bound on the error of the mean). Coherence: "
                     f"the mean similarity ({'exp(-VI)' if measure == 'vi' else 'NMI'}) within the cluster. "
                     + (f"Stability: the fraction of the members' pairs clustered together again over {draws} "
                        "redraws of every pair's NMI and VI within its standard error (1: always)." if draws else
                        "Stability needs the pairs' standard errors ([errors] groups > 0).")
                     + (f" Pairs above null: the fraction of the cluster's pairs whose NMI exceeds the "
                        f"{float(st.attrs['null_level']):.0%} quantile of unrelated channels' NMI at this N and "
                        f"information (a permutation null; {float(st.attrs['pairs_above_null']):.0%} of all kept "
                        "pairs are above it)." if "null_level" in st.attrs else "") + "</p>")
    return "".join(parts)


def latents_section(store_path: str, by_name: dict[str, Path]) -> str:
    """Whole latent spaces: the figure and the groups' means."""
    return ("<h2>Whole latent spaces</h2>" + "".join(_figures(by_name, (("latents", "whole latent spaces by Monte Carlo"),)))
            + _latents(str(store_path)))


def _latents(store_path: str) -> str:
    la = open_dataset(store_path, "latents").load()
    rows = [(str(la["group_dataset"].values[g]), str(la["group_family"].values[g]),
             f"{la['group_hyperparameter'].values[g]}={float(la['group_hyperparameter_value'].values[g]):g}",
             int(la["n_models"].values[g]), float(la["information_fraction_mean"].values[g]),
             float(la["nmi_mean"].values[g]), float(la["nmi_mean_se"].values[g]), float(la["vi_mean"].values[g]),
             float(la["vi_mean_se"].values[g])) for g in range(la.sizes["group"])]
    return (f"<p>Monte Carlo over M = {la.attrs.get('n_images')} images.</p>"
            + _table(("dataset", "family", "setting", "models", "I(U;X)/H(X)", "NMI", "± SE", "VI (bits)", "± SE"),
                     rows, cls="latents"))


def measures_section(store_path: str, by_name: dict[str, Path]) -> str:
    """The measures side by side: their matrices and agreement, the spaces, the Spearman table."""
    parts = ["<h2>Measures side by side</h2>"]
    parts += _figures(by_name, (("measures_matrices", "every measure between every two spaces"),
                                ("measures_agreement", "how the measures agree")))
    parts.append(_measures(str(store_path)))
    parts += _figures(by_name, (), (("spaces", "the spaces: posterior means and one standard deviation"),
                                    ("measures_scatter", "every two measures over the pairs of spaces")))
    return "".join(parts)


def fusion_section(store_path: str, by_name: dict[str, Path]) -> str:
    """The ensemble fused: the figure, and the fused space's NMI with the factors beside its best member's."""
    fu = open_dataset(str(store_path), "fusion").load()
    return ("<h2>The ensemble fused</h2>" + "".join(_figures(by_name, (("fusion", "the channels fused into one space"),)))
            + f"<p>{fu.sizes['member']} channels ({_e(fu.attrs.get('members'))}) fused by "
            f"{_e(fu.attrs.get('similarity'))}: mean NMI with the members {float(fu['nmi'].mean()):.3g}.</p>"
            + _table(("factor", "NMI, fused space", "NMI, best member"),
                     [(str(f), float(fu["nmi_factor"].values[k]), float(np.nanmax(fu["member_nmi_factor"].values[:, k])))
                      for k, f in enumerate(fu["factor"].values)], cls="fusion"))


def so2_section(store_path: str, by_name: dict[str, Path]) -> str:
    """Fusion on the circle: the figures and the continuity table."""
    return ("<h2>Fusion on the circle</h2>" + "".join(_figures(by_name, (("so2_continuity", "continuity against ensemble size"),
                                                                         ("so2_circles", "the fused spaces"))))
            + _so2(str(store_path)))


def _measures(store_path: str) -> str:
    ds = open_dataset(store_path, "measures").load()
    sp = open_dataset(store_path, "spaces").load()
    rows = [(str(n), int(d), str(t)) for n, d, t in zip(sp["space"].values, sp["n_dims"].values,
                                                         sp["description"].values)]
    parts = [f"<p>{len(rows)} spaces ({_e(sp.attrs.get('source'))}) over {sp.sizes['item']} items.</p>",
             _table(("space", "dims", "what it is"), rows, cls="spaces")]
    if "spearman" in ds:
        names = [str(m) for m in ds["measure_a"].values]
        rho = ds["spearman"].values
        interval = ""
        if "spearman_low" in ds:
            low, high, a = ds["spearman_low"].values, ds["spearman_high"].values, ds["spearman_low"].attrs
            interval = (f", each with its {float(a.get('level', 0.95)):.0%} percentile bootstrap interval [low, high] "
                        f"from {a.get('n_resamples', '?')} resamples of the spaces")
            cells = [[f"{rho[i, j]:.3g} [{low[i, j]:.3g}, {high[i, j]:.3g}]" if i != j else f"{rho[i, j]:.3g}"
                      for j in range(len(names))] for i in range(len(names))]
        else:
            cells = [[float(v) for v in row] for row in rho]
        parts.append(f"<p>Spearman correlation of every two measures over {ds['spearman'].attrs.get('pairs')} "
                     f"distinct pairs of spaces{interval} (a distance against a similarity agrees when "
                     "negative):</p>")
        parts.append(_table(("", *names), [(n, *row) for n, row in zip(names, cells)], cls="spearman"))
    return "".join(parts)


def _so2(store_path: str) -> str:
    fu = open_dataset(store_path, "so2_fusion").load()
    sims = [str(s) for s in fu["similarity"].values]
    rows = [(int(size), *(f"{np.nanmean(fu['continuity'].values[a, b]):.3g} ± {np.nanstd(fu['continuity'].values[a, b]):.2g}"
                          for a in range(len(sims)))) for b, size in enumerate(fu["size"].values)]
    return (f"<p>Continuity of the fused space (mean ± standard deviation over {fu.sizes['repeat']} repeats; 1: the "
            "circle unbroken, large: torn), by ensemble size and by what the fusion maximised.</p>"
            + _table(("ensemble size", *sims), rows, cls="so2"))


def write_report(store_path: str | Path, out: str | Path, figures: Sequence[Path], sections: Sequence[str] = (),
                 tables: Sequence[str] | None = None) -> Path:
    """Write the report of the run in ``store_path`` to ``out`` (HTML), inlining ``figures``.

    ``sections`` are the finished analyses' sections (HTML, from each stage's registered report
    function); ``tables`` the configuration tables of the stages that ran (None: every table recorded).
    """
    store_path = str(store_path)
    root = open_run(store_path, create=False)
    run = Path(store_path).resolve()
    name = run.parent.name if run.name == "store.zarr" else run.name
    prov = _provenance(root)
    latest = max(prov, key=lambda p: str(p[1].get("written_at", "")))[1] if prov else {}
    config = json.loads(latest.get("config", "{}"))
    if tables is not None:
        config = {k: v for k, v in config.items() if not isinstance(v, dict) or k in tables}
    models = read_models(root["models"]) if "models" in root else (
        read_models(root["embeddings"]) if "embeddings" in root else [])
    body = [f"<h1>repspace run {_e(name)}</h1>",
            f'<p class="note">store {_e(store_path)}; last written {_e(latest.get("written_at", "?"))} by run '
            f'{_e(latest.get("run_id", "?"))}, repspace {_e(latest.get("repspace_version", "?"))}</p>', *sections]
    if models:
        body.append("<h2>The ensemble</h2>" + _ensemble(models))
    failed: dict[str, str] = {}
    for g in ("embeddings", "dataset_embeddings", "latents"):
        if g in root:
            failed.update(json.loads(root[g].attrs.get("failed_models", "{}") or "{}"))
    if models or failed:
        body.append("<h2>Models left out</h2>" + (_table(("model", "why"), sorted(failed.items()), cls="failed")
                                                   if failed else "<p>None: every model was encoded.</p>"))
    body.append("<h2>Stages</h2>" + _table(
        ("group", "stage", "blocks computed", "blocks skipped", "seconds", "estimated before it started", "run",
         "written"),
        [(g, a.get("stage", g), a.get("computed", ""), a.get("skipped", ""), float(a.get("elapsed_s", float("nan"))),
          a.get("estimated_s") or "", a.get("run_id", ""), a.get("written_at", "")) for g, a in prov], cls="stages"))
    body.append("<h2>Configuration</h2><pre>" + _e(json.dumps(config, indent=2, sort_keys=True)) + "</pre>")
    opens = "\n".join(f'xr.open_zarr("{store_path}", group="{g}", consolidated=False)' for g in _groups(root))
    body.append("<h2>Open the results</h2><pre>import xarray as xr\n" + _e(opens) + "</pre>")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>repspace run {_e(name)}"
            f"</title><style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

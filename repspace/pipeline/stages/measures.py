"""The measures stage (the paper's Sec. 4.1): every similarity measure between every two stored spaces.

Reads ``spaces``; writes ``measures`` (:mod:`repspace.store.measures`). One task per family of
:data:`repspace.measures.FAMILIES` (the Bhattacharyya measures together, each CKA), one per
row of pairs for the costly Monte Carlo and shape measures, and one per space for the
classifier measure; finalize forms the classifiers' JSD matrix and the
Spearman agreement between the measures, with its bootstrap interval over the spaces
(:func:`repspace.agreement.measure_agreement_interval`, seeded by the measures' seed on its own
stream). A block stays done while its spaces and the options its values depend on are
unchanged, so asking for another measure, or changing the classifier, computes only that.
When the spaces change every value is stale and is computed again.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from ...agreement import measure_agreement_interval
from ...measures import MEASURES, FAMILIES, ROW_FAMILIES, UNITS, MeasureOptions, classifier_predictions, compute_family, \
    family_of, jsd_matrix
from ...store import open_group, write_coordinate, write_whole
from ...store import measures as schema
from ...store.spaces import GROUP as SPACES, read_spaces
from ..stage import Block, Plan, Stage, StageContext
from .latents import estimate_cost

__all__ = ["STAGE", "ComparisonOptions", "measure_task", "AGREEMENT_STREAM"]

AGREEMENT_STREAM = (9, 0)
"""Spawn key of the agreement's bootstrap: ``default_rng(SeedSequence(seed, spawn_key=AGREEMENT_STREAM))``
(two words: the Monte Carlo pairs take the one-word keys (k,))."""

@dataclasses.dataclass(frozen=True)
class ComparisonOptions(MeasureOptions):
    """The ``[measures]`` table: which spaces the stages spaces and measures compare, and how.

    The measures' own options (``debiased``, ``mc_samples``, ``shape_alpha``, ``shape_restarts`` and the
    ``[measures.classifier]`` table) are :class:`repspace.measures.MeasureOptions`' fields, with its defaults
    (the classifier's: the paper's; ``jobs/compare_measures.toml`` trains lighter ones).

    Attributes
    ----------
    source : the spaces compared: "synthetic" (the paper's nine spaces), "latents" (each model's
        whole latent space over the fingerprint images) or "channels" (each informative channel,
        I(U) >= the run's ``info_threshold``, as a 1-D space).
    measures : names from :data:`repspace.measures.MEASURES` (default: every one).
    n_items : items of the synthetic spaces (the paper: 64).
    max_spaces : at most this many spaces from a run, in store order (the rest are named in the log
        and the group's attrs); the classifier measure trains one network per space.
    seed : seeds the measures and the agreement's bootstrap (None: the run's seed).
    agreement_resamples : resamples of the spaces in the bootstrap interval of the measures' Spearman agreement.
    agreement_level : that interval's coverage, in (0, 1).
    """

    seed: int | None = None
    source: str = "synthetic"
    measures: tuple[str, ...] = ()
    n_items: int = 64
    max_spaces: int = 60
    agreement_resamples: int = 1000
    agreement_level: float = 0.95

    def __post_init__(self) -> None:
        from ...store.spaces import SOURCES

        super().__post_init__()
        object.__setattr__(self, "measures", tuple(self.measures) or MEASURES)
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown:
            raise ValueError(f"measures: unknown measures {unknown}; measures are {', '.join(MEASURES)}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.max_spaces < 2:
            raise ValueError(f"max_spaces must be at least 2, got {self.max_spaces}")
        if self.agreement_resamples < 1:
            raise ValueError(f"agreement_resamples must be at least 1, got {self.agreement_resamples}")
        if not 0.0 < self.agreement_level < 1.0:
            raise ValueError(f"agreement_level must be in (0, 1), got {self.agreement_level}")

    def options(self, seed: int) -> MeasureOptions:
        """The :class:`repspace.measures.MeasureOptions` of these settings (``seed``: the run's, unless set here)."""
        return MeasureOptions(seed=seed if self.seed is None else self.seed, debiased=self.debiased,
                              mc_samples=self.mc_samples, shape_alpha=self.shape_alpha,
                              shape_restarts=self.shape_restarts, classifier=self.classifier)


CLASSIFIER_FLOPS_PER_S = 1.0e11
"""Floating-point operations per second of one classifier training in a one-thread worker beside another
(benchmarks/bench_estimates.py: 23 s for the default job's 2.0e12 on 2 cores, 2026-12-06); for estimates only."""
SHAPE_START_S = 0.01
"""Seconds of one start of the shape distance's search, per 64 items and per parameter of O(d) (d(d-1)/2):
about 0.02 s between two 2-D spaces of 64 items, 2.3 s between 10-D spaces of 300."""
_FAMILY_INDEX = {f: k for k, f in enumerate(FAMILIES)}
_ROW_MARKER = {"mc": "mc_done", "stochastic_shape": "shape_done"}


def measure_task(store_path: str, kind: str, what: Any, members: tuple[str, ...], options: dict[str, Any],
                 threads: int) -> str:
    """One family's measures between every two spaces (``kind`` "family", ``what`` its name), one row of
    pairs of a costly family (``kind`` "row", ``what`` (family, row)), or one space's classifier
    (``kind`` "classifier", ``what`` the space's position); written to ``measures``."""
    names, mu, lv, _ = read_spaces(store_path)
    opts = MeasureOptions(**options)
    grp = open_group(store_path, schema.GROUP, mode="r+")
    with threadpool_limits(threads):  # the cluster's threads are the parallelism
        if kind == "family":
            for name, values in compute_family(what, mu, lv, opts, members).items():
                grp[name][...] = values
            return what
        if kind == "row":
            family, row = what
            for name, values in compute_family(family, mu, lv, opts, members, rows=[row]).items():
                grp[name][row] = values[row]  # its own row chunk; finalize mirrors it below the diagonal
            return f"{family}-{row}"
        pred, bits = classifier_predictions(mu[what], lv[what], opts, threads=threads)
    grp["classifier_predictions"][what] = pred
    grp["classifier_information"][what] = bits
    return names[what]


def _cost(family: str, mu: list[np.ndarray], opts: MeasureOptions, row: int | None = None) -> float:
    s, n = len(mu), mu[0].shape[0]
    dims = [m.shape[1] for m in mu]
    rows = range(s) if row is None else [row]
    if family == "mc":
        return sum(estimate_cost(opts.mc_samples, n, dims[a] + dims[b], "float64") * 5
                   for a in rows for b in range(a, s))
    if family == "stochastic_shape":
        same = sum(dims[a] * (dims[a] - 1) / 2 for a in rows for b in range(a + 1, s) if dims[a] == dims[b] > 1)
        return same * 2 * (1 + opts.shape_restarts) * SHAPE_START_S * n / 64
    return 0.0


def plan(ctx: StageContext) -> Plan:
    c, o = ctx.config, ctx.config.measures
    names, mu, lv, attrs = read_spaces(ctx.store_path)
    opts = o.options(c.seed)
    wanted = list(o.measures)
    grp = ctx.group
    spaces_id = attrs["spaces_id"]
    if grp.attrs.get("spaces_id") not in (None, spaces_id):
        ctx.log("measures: the spaces changed since the last comparison; every measure is computed again")
        schema.clear(grp)
    variables = [v for m in wanted for v in ((m, f"{m}_se") if m in FAMILIES["mc"] else (m,))]
    by_rows = [v for v in variables if family_of(v.removesuffix("_se")) in ROW_FAMILIES]
    classifier = "jsd_classifier" in wanted
    schema.layout(grp, names, list(FAMILIES), variables, mu[0].shape[0], classifier, UNITS, by_rows)
    grp.attrs.update({"spaces_id": spaces_id, "measures": json.dumps(wanted), "source": attrs.get("source")})
    o_dict, threads = opts.as_dict(), c.threads_per_worker
    blocks = []
    for family, members in FAMILIES.items():
        chosen = tuple(m for m in members if m in wanted)
        if not chosen or family == "jsd_classifier":
            continue
        if family in ROW_FAMILIES:  # a task per row of pairs, so that the costly families spread over the workers
            blocks += [Block(name=f"{family}-{a}", key=(a,), marker=_ROW_MARKER[family],
                             extent=(family, chosen, opts.of_family(family, chosen), spaces_id, a),
                             args=("row", (family, a), chosen, o_dict, threads), cost=_cost(family, mu, opts, a))
                       for a in range(len(names))]
            continue
        blocks.append(Block(name=family, key=(_FAMILY_INDEX[family],), marker="family_done",
                            extent=(family, chosen, opts.of_family(family, chosen), spaces_id),
                            args=("family", family, chosen, o_dict, threads), cost=_cost(family, mu, opts)))
    markers = {"family_done": ((len(FAMILIES),), ("family",))}
    markers.update({_ROW_MARKER[f]: ((len(names),), ("space",)) for f in ROW_FAMILIES
                    if any(m in wanted for m in FAMILIES[f])})
    if classifier:
        clf = opts.of_family("jsd_classifier")
        blocks += [Block(name=f"classifier-{name}", key=(k,), marker="classifier_done",
                         extent=(name, spaces_id, clf), args=("classifier", k, (), o_dict, threads),
                         cost=3.0 + opts.classifier.flops(mu[k].shape[0], mu[k].shape[1]) / CLASSIFIER_FLOPS_PER_S)
                   for k, name in enumerate(names)]
        markers["classifier_done"] = ((len(names),), ("space",))
    ctx.log(f"measures: {len(wanted)} measures between {len(names)} spaces ({attrs.get('source')}); "
            f"{len(blocks)} tasks")
    return Plan(blocks=blocks, markers=markers, state=(names, wanted, opts, by_rows),
                note=f"{len(wanted)} measures between {len(names)} spaces")


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    names, wanted, opts, by_rows = plan.state
    grp = ctx.group
    for name in by_rows:
        values = np.asarray(grp[name][:])  # rows hold the pairs (a, b >= a): mirrored below the diagonal
        upper = np.triu(values)
        grp[name][...] = np.where(np.triu(np.ones_like(values, dtype=bool)), values, upper.T)
    if "jsd_classifier" in wanted:
        grp["jsd_classifier"][...] = jsd_matrix(list(np.asarray(grp["classifier_predictions"][:])))
    recorded = json.loads(grp.attrs.get("family_options", "{}"))
    recorded.update({f: opts.of_family(f, [m for m in members if m in wanted]) for f, members in FAMILIES.items()
                     if any(m in wanted for m in members)})
    grp.attrs["family_options"] = json.dumps(recorded, sort_keys=True)
    ds = xr.Dataset({m: (("space_a", "space_b"), np.asarray(grp[m][:])) for m in wanted},
                    coords={"space_a": names, "space_b": names})
    note = plan.note
    o = ctx.config.measures
    if len(names) >= 3 and len(wanted) >= 2:
        rng = np.random.default_rng(np.random.SeedSequence(opts.seed, spawn_key=AGREEMENT_STREAM))
        agree = measure_agreement_interval(ds, rng, n_resamples=o.agreement_resamples, level=o.agreement_level)
        write_coordinate(grp, "measure_a", "measure_a", wanted)
        write_coordinate(grp, "measure_b", "measure_b", wanted)
        interval = {k: agree.attrs[k] for k in ("method", "n_resamples", "level")}
        undefined = int(agree["spearman_undefined"].max())
        for name in ("spearman", "spearman_low", "spearman_high"):
            attrs = {"long_name": agree[name].attrs["long_name"], "pairs": agree.attrs["pairs"], **interval}
            if name != "spearman":
                attrs["undefined_resamples"] = undefined  # most left out, over the pairs of measures
            write_whole(grp, name, agree[name].values, ("measure_a", "measure_b"), attrs)
        note += (f"; Spearman over {agree.attrs['pairs']} pairs of spaces, {o.agreement_level:.0%} interval from "
                 f"{o.agreement_resamples} resamples of the spaces")
    else:
        for name in ("spearman", "spearman_low", "spearman_high"):
            if name in grp:
                del grp[name]
    return note


STAGE = Stage(name="measures", writes=schema.GROUP, needs=(SPACES,), plan=plan, task=measure_task, finalize=finalize,
              table="measures", options=ComparisonOptions, figures="repspace.plots.measures:draw_measures_figures",
              report="repspace.plots.report:measures_section")

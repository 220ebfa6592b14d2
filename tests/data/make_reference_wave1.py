"""Writes tests/data/reference_run.npz with the wave-1 code: a synthetic sweep and a latents run."""
import sys, tempfile
from pathlib import Path
import numpy as np, xarray as xr
from distributed import Client, LocalCluster
from repspace.data import FingerprintConfig, build_fingerprint
from repspace.pipeline import SweepConfig, run_sweep
from repspace.pipeline.sweep import ModelEntry, write_embeddings
from repspace.pipeline.latents import LatentsConfig, run_latents, write_latent_embeddings

N, C, M = 40, 4, 7
def posteriors(factors, seed=0):
    rng = np.random.default_rng(seed)
    x, y, s = (factors[:, k].astype(float) for k in (3, 4, 1))
    mu = np.empty((M, C, N), np.float32); lv = np.empty_like(mu)
    for m in range(M):
        mu[m, 0] = rng.choice([-1, 1]) * (x / 8 + rng.normal(0, 0.2, N))
        mu[m, 1] = rng.choice([-1, 1]) * (y / 8 + rng.normal(0, 0.3, N))
        mu[m, 2] = s / 3 + rng.normal(0, 0.5, N)
        mu[m, 3] = rng.normal(0, 1e-3, N)
        lv[m, :3] = rng.normal(-3, 0.3, (3, N)); lv[m, 3] = 0.0
    return mu, lv

def entries(names, family="synthetic", value=1.0):
    return [ModelEntry(name=str(n), path="", dataset="dsprites_procedural", family=family, hyperparameter="beta",
                       hyperparameter_value=value, seed=int(n), source="test") for n in names]

def main():
    out = {}
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        config = SweepConfig(run_dir=f"{tmp}/run", n_images=N, image_size=32, pair_block_units=2 * C, figures=False,
                             dashboard=False, stages=("channels", "pairs", "structure"))
        fp = build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N, seed=0, image_size=32, store=config.store))
        mu, lv = posteriors(fp["factors"].values)
        out["sweep_mu"], out["sweep_logvar"] = mu, lv
        write_embeddings(config.store, mu, lv, entries(range(M)))
        run_sweep(config, client=client)
        ch = xr.open_zarr(config.store, group="channels", consolidated=False).load()
        pr = xr.open_zarr(config.store, group="pairs", consolidated=False).load()
        st = xr.open_zarr(config.store, group="structure", consolidated=False).load()
        for k in ("info", "self_info", "nmi_factor", "vi_factor"):
            out[f"channels/{k}"] = ch[k].values
        for k in ("nmi", "vi"):
            out[f"pairs/{k}"] = pr[k].values
        for k in ("order", "reachability", "label", "cluster_size", "cluster_models", "cluster_central_unit",
                  "cluster_coherence", "cluster_nmi_factor", "model_index", "channel"):
            out[f"structure/{k}"] = st[k].values
        # whole latent spaces: two groups of three models, 3-d spaces over 50 images
        rng = np.random.default_rng(1)
        base = rng.normal(size=(50, 3))
        lmu = np.stack([base @ rng.normal(size=(3, 3)) + rng.normal(0, 0.3, (50, 3)) for _ in range(6)]).astype(np.float32)
        llv = rng.normal(-2, 0.3, size=lmu.shape).astype(np.float32)
        out["latents_mu"], out["latents_logvar"] = lmu, llv
        models = entries(range(3), "fam_a", 1.0) + entries(range(3, 6), "fam_b", 2.0)
        lstore = Path(tmp) / "latents" / "store.zarr"
        write_latent_embeddings(lstore, lmu, llv, models)
        run_latents(LatentsConfig(store=lstore, n_samples=300, seed=3), client=client)
        la = xr.open_zarr(lstore, group="latents", consolidated=False).load()
        for k in ("info", "info_se", "info_fraction", "estimate", "estimate_se", "nmi", "nmi_se", "vi", "vi_se",
                  "info_mean", "info_mean_se", "nmi_mean", "nmi_mean_se", "vi_mean", "vi_mean_se", "n_pairs"):
            out[f"latents/{k}"] = la[k].values
    np.savez_compressed(sys.argv[1], **out)
    print({k: v.shape for k, v in out.items()})

if __name__ == '__main__':
    main()

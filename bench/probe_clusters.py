"""Where is the class information lost? K-means cluster accuracy of several pooled features (issue 13).

    .venv/bin/python bench/probe_clusters.py --run RUN --data data/demo [--checkpoint CKPT] [--json OUT]

On the train images of a demo-like dataset (``DATA/train-segmentation/`` needed for the oracle rows),
every image resized and centre-cropped as ``luss cluster`` does (``cluster.short_side``, ``cluster.crop``),
it clusters with the cluster stage's own faiss k-means (K = classes, ``cluster.niter``/``nredo``/``seed``)
and prints cluster accuracy, NMI and leave-one-out 10-NN accuracy (cosine) of:

* ``stage1 pooled``: the Stage-1 backbone (``RUN/pretrain/checkpoints/final.pkl`` or ``--checkpoint``),
  average-pooled (what SwAV's projection head sees);
* ``stage1 unit pooled``: its unit-norm x4-upsampled features pooled uniformly (the cluster report's
  ``no_attention`` row);
* ``stage1 embedding``: the projection head's unit embedding (what the prototypes score);
* ``stage1 GT-fg pooled`` / ``GT-object pooled`` (/ ``GT-object raw pooled``): the unit-norm (raw)
  features pooled inside the ground-truth foreground / the image's own class's pixels (oracles,
  diagnosis only: nothing trains on these masks);
* ``attention pooled``: with ``RUN/cluster/pixel_attention/checkpoints/final.pkl``, what ``luss cluster``
  clusters (the unit-norm features pooled by the attention), and ``attention raw pooled``: the raw
  up-sampled features pooled by the same attention (PASS ``inference_cluster``, spec 5.3);
* ``random ...``: every ``stage1`` row again for the randomly initialised network (seeded like Stage 1);
* ``mean colour`` of the crop and of its ground-truth object (trivial baselines).

10-NN accuracy says whether the class is in the features at all; a high 10-NN with a low cluster accuracy
means the classes are there but not as k-means-shaped blobs. Never fails on a number.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def knn_accuracy(features: np.ndarray, classes: np.ndarray, k: int = 10) -> float:
    """Leave-one-out majority vote of the ``k`` nearest rows by cosine."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :k]
    votes = classes[nearest]
    predicted = np.array([np.bincount(v, minlength=classes.max() + 1).argmax() for v in votes])
    return float((predicted == classes).mean())


def crop_labels(path: Path, short_side: int, crop: int) -> np.ndarray:
    """Ground-truth labels ``int32 [crop, crop]``, resized (nearest) and centre-cropped like the image."""
    from tools.clustering.embed import center_crop
    from tools.data.label_codec import read_label_png

    img = Image.fromarray(read_label_png(path).astype(np.int32))
    w, h = img.size
    size = (short_side, int(short_side * h / w)) if w <= h else (int(short_side * w / h), short_side)
    return np.asarray(center_crop(img.resize(size, Image.NEAREST), crop), dtype=np.int32)


def cell_weights(mask: np.ndarray, cells: int) -> np.ndarray:
    """Fraction of mask pixels in each of ``cells x cells`` cells (``[cells, cells]``)."""
    h, w = mask.shape
    ys = np.linspace(0, h, cells + 1).astype(int)
    xs = np.linspace(0, w, cells + 1).astype(int)
    out = np.zeros((cells, cells), np.float32)
    for i in range(cells):
        for j in range(cells):
            out[i, j] = mask[ys[i] : ys[i + 1], xs[j] : xs[j + 1]].mean()
    return out


def masked_pool(u_n: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[D, h, w]`` features pooled with ``[h, w]`` weights (uniform where the weights are all 0)."""
    from tools.clustering.embed import mask_pooled

    if float(weights.sum()) <= 0:
        return u_n.mean(axis=(1, 2))
    return mask_pooled(u_n, weights)


def stage_one_net(config, checkpoint: Path | None):
    """The Stage-1 network in eval mode: random (seeded like Stage 1) when ``checkpoint`` is None."""
    from tools.engine.trainer import seed_everything
    from tools.networks import build_network, load_network_weights

    seed_everything(config.pretrain.loop.seed)
    net = build_network(config, "pretrain")
    if checkpoint is not None:
        load_network_weights(net, "pretrain->pretrain", checkpoint)
    net.eval()
    return net


def stage_one_features(net, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled, unit-pooled and embedding rows plus the ``[B, D, 4h, 4w]`` unit-norm maps of a batch."""
    import jittor as jt
    from jittor import nn

    from models.heads import l2_normalize
    from models.pixel_attention_net import UPSAMPLE

    with jt.no_grad():
        f = net.backbone(jt.array(batch))
        pooled = f.mean(dims=(2, 3))
        h, w = int(f.shape[2]), int(f.shape[3])
        up = nn.interpolate(f, size=(h * UPSAMPLE, w * UPSAMPLE), mode="bilinear", align_corners=False)
        u_n = l2_normalize(up, dim=1)
        emb = l2_normalize(net.projection_head(pooled), dim=1)
        return {
            "pooled": pooled.numpy(),
            "unit pooled": u_n.mean(dims=(2, 3)).numpy(),
            "embedding": emb.numpy(),
            "maps": u_n.numpy(),
            "raw_maps": up.numpy(),
        }


def attention_features(config, checkpoint: Path, batches: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Attention-pooled rows: of the unit-norm features (``luss cluster``) and of the raw up-sampled
    features with the same attention (PASS ``inference_cluster``, spec 5.3)."""
    import jittor as jt

    from tools.networks import build_network, load_network_weights

    net = build_network(config, "attention_features")
    load_network_weights(net, "attention->attention_features", checkpoint)
    net.eval()
    from jittor import nn

    unit, raw = [], []
    with jt.no_grad():
        for batch in batches:
            x = jt.array(batch)
            u_n = net.features(x)
            pooled, attention = net.attend(u_n)
            f = net.backbone(x)
            up = nn.interpolate(f, size=tuple(u_n.shape[2:]), mode="bilinear", align_corners=False)
            unit.append(pooled.numpy())
            raw.append((up * net.fbg(u_n)).mean(dims=(2, 3)).numpy())
    return np.concatenate(unit), np.concatenate(raw)


def probe(run: Path, data: Path, checkpoint: Path | None, preset: str, overrides: list[str]) -> list[dict]:
    from tools.clustering.embed import center_crop, embedding_input
    from tools.clustering.kmeans import cluster_accuracy, kmeans, normalized_mutual_info
    from tools.clustering.quality import train_ground_truth
    from tools.config.loader import load_config
    from tools.data.imagenet_s import ImageNetS
    from tools.data.images import load_rgb_image
    from tools.data.label_codec import IGNORE_ID
    from tools.predict.preprocess import resize_shorter_side

    config = load_config(preset, overrides)
    cfg = config.cluster
    dataset = ImageNetS(data)
    samples = dataset.samples("train")
    classes = np.array([dataset.class_id(s.wnid) for s in samples])
    checkpoint = checkpoint or run / "pretrain" / "checkpoints" / "final.pkl"
    batches = [
        np.stack([embedding_input(s.image_path, cfg.short_side, cfg.crop) for s in samples[i : i + 32]])
        for i in range(0, len(samples), 32)
    ]
    labels = [crop_labels(train_ground_truth(data, s), cfg.short_side, cfg.crop) for s in samples]
    fg_masks = [(g > 0) & (g != IGNORE_ID) for g in labels]
    obj_masks = [g == c for g, c in zip(labels, classes, strict=True)]
    rows: dict[str, np.ndarray] = {}

    def collect(net, prefix: str) -> None:
        parts: dict[str, list[np.ndarray]] = {}
        for batch in batches:
            for key, value in stage_one_features(net, batch).items():
                parts.setdefault(key, []).append(value)
        maps = np.concatenate(parts.pop("maps"))
        raw_maps = np.concatenate(parts.pop("raw_maps"))
        for key, value in parts.items():
            rows[f"{prefix} {key}"] = np.concatenate(value)
        cells = maps.shape[-1]
        rows[f"{prefix} GT-fg pooled"] = np.stack(
            [masked_pool(m, cell_weights(fg, cells)) for m, fg in zip(maps, fg_masks, strict=True)]
        )
        rows[f"{prefix} GT-object pooled"] = np.stack(
            [masked_pool(m, cell_weights(ob, cells)) for m, ob in zip(maps, obj_masks, strict=True)]
        )
        rows[f"{prefix} GT-object raw pooled"] = np.stack(
            [masked_pool(m, cell_weights(ob, cells)) for m, ob in zip(raw_maps, obj_masks, strict=True)]
        )

    collect(stage_one_net(config, None), "random")
    collect(stage_one_net(config, checkpoint), "stage1")
    attention_ckpt = run / "cluster" / "pixel_attention" / "checkpoints" / "final.pkl"
    if attention_ckpt.is_file():
        rows["attention pooled"], rows["attention raw pooled"] = attention_features(
            config, attention_ckpt, batches
        )
    crops = [
        np.asarray(
            center_crop(resize_shorter_side(load_rgb_image(s.image_path), cfg.short_side), cfg.crop),
            np.float32,
        )
        / 255.0
        for s in samples
    ]
    rows["mean colour (crop)"] = np.stack([c.reshape(-1, 3).mean(0) for c in crops])
    rows["mean colour (GT object)"] = np.stack(
        [c[m].mean(0) if m.any() else c.reshape(-1, 3).mean(0) for c, m in zip(crops, obj_masks, strict=True)]
    )
    k = dataset.num_classes
    results = []
    for name, x in rows.items():
        assigned = kmeans(x, k, cfg.niter, cfg.nredo, cfg.seed).train_labels
        results.append(
            {
                "features": name,
                "dim": int(x.shape[1]),
                "cluster_accuracy": cluster_accuracy(classes, assigned),
                "nmi": normalized_mutual_info(classes, assigned),
                "knn10": knn_accuracy(x, classes),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder (RUN/pretrain, RUN/cluster)")
    parser.add_argument("--data", type=Path, required=True, help="demo dataset with train-segmentation/")
    parser.add_argument("--checkpoint", type=Path, default=None, help="Stage-1 checkpoint (default: final)")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()

    from tools.runtime import configure_runtime

    configure_runtime()
    from rich.console import Console
    from rich.table import Table

    results = probe(args.run, args.data, args.checkpoint, args.preset, args.overrides)
    table = Table(title=f"k-means on pooled features: {args.run}")
    for column in ("features", "dim", "cluster acc", "NMI", "10-NN acc"):
        table.add_column(column, justify="left" if column == "features" else "right")
    for r in results:
        table.add_row(
            r["features"],
            str(r["dim"]),
            f"{r['cluster_accuracy']:.3f}",
            f"{r['nmi']:.3f}",
            f"{r['knn10']:.3f}",
        )
    Console().print(table)
    if args.json is not None:
        from tools.atomic_io import atomic_write_json

        atomic_write_json(args.json, {"run": str(args.run), "rows": results})


if __name__ == "__main__":
    main()

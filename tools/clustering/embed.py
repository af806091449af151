"""What Stage 2 computes per image with the pixel-attention network: the clustering embedding of an
image (spec 5.2-5.3) and its dense cosine-argmax labels with the attention map (spec 6.1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tools.data.imagenet_s import Sample
from tools.data.images import load_rgb_image
from tools.predict.preprocess import resize_shorter_side, to_normalized_chw
from tools.progress import progress_bar

EMBED_BATCH = 32


def center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def embedding_input(path: Path, short_side: int, crop: int) -> np.ndarray:
    """Spec 5.2 (PASS): shorter side to ``short_side`` (aspect kept), centre crop, normalise."""
    return to_normalized_chw(center_crop(resize_shorter_side(load_rgb_image(path), short_side), crop))


def _batches(samples: Sequence[Sample], size: int) -> Iterator[Sequence[Sample]]:
    for start in range(0, len(samples), size):
        yield samples[start : start + size]


def foreground_weights(mask: np.ndarray, short_side: int, crop: int, grid: tuple[int, int]) -> np.ndarray:
    """Float32 ``[h, w]``: the share of each feature cell that ``mask`` (bool ``[H, W]`` at the image's
    size) covers after the embedding input's resize and centre crop (:func:`embedding_input`)."""
    image = Image.fromarray(mask.astype(np.float32))  # a float32 array is a mode "F" image
    cropped = center_crop(resize_shorter_side(image, short_side), crop)
    return np.asarray(cropped.resize((grid[1], grid[0]), Image.BOX), dtype=np.float32)


def mask_pooled(u_n: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[D]``: ``u_n [D, h, w]`` averaged with ``weights [h, w]``; NaN where the weights are all 0."""
    total = float(weights.sum())
    if total <= 0:
        return np.full(u_n.shape[0], np.nan, np.float32)
    return ((u_n * weights[None]).sum(axis=(1, 2)) / total).astype(np.float32)


def embed_samples(
    net,
    samples: Sequence[Sample],
    short_side: int,
    crop: int,
    label: str,
    foreground: Callable[[Sample], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, ...]:
    """``([N, D], [N, D])``: the clustering embeddings of spec 5.3, ``attend(features(x))`` (normalised
    features pooled by the attention, as in training), and, for the report's ablation, the same
    features pooled uniformly (no attention). One backbone pass gives both.

    With ``foreground`` (sample -> ground-truth object mask ``bool [H, W]``, or None where there is
    none) a third ``[N, D]`` block holds the features pooled over that mask (NaN rows where it is
    missing): a measurement of whether the features carry the class, never used to train or cluster."""
    import jittor as jt

    net.eval()
    attended, uniform, on_object = [], [], []
    with jt.no_grad(), progress_bar(label, len(samples)) as advance:
        for chunk in _batches(samples, EMBED_BATCH):
            x = np.stack([embedding_input(s.image_path, short_side, crop) for s in chunk])
            u_n = net.features(jt.array(x))
            attended.append(net.attend(u_n)[0].numpy().astype(np.float32))
            uniform.append(u_n.mean(dims=(2, 3)).numpy().astype(np.float32))
            if foreground is not None:
                dense = u_n.numpy()
                for s, u in zip(chunk, dense, strict=True):
                    mask = foreground(s)
                    weights = (
                        np.zeros(u.shape[1:], np.float32)
                        if mask is None
                        else foreground_weights(mask, short_side, crop, u.shape[1:])
                    )
                    on_object.append(mask_pooled(u, weights)[None])
            advance(len(chunk))
    blocks = 2 if foreground is None else 3
    if not attended:
        return tuple(np.zeros((0, 0), np.float32) for _ in range(blocks))
    out = [np.concatenate(attended), np.concatenate(uniform)]
    if foreground is not None:
        out.append(np.concatenate(on_object))
    return tuple(out)


def dense_labels(
    net, image: Image.Image, centroids: np.ndarray, short_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spec 6.1 without the threshold: ``(labels int32 [H, W] in 1..C, attention float32 [H, W])``."""
    import jittor as jt
    from jittor import nn

    from models.feature_aggregator import input_multiple
    from tools.predict.labels import nearest_resize_labels

    w, h = image.size
    chw = to_normalized_chw(resize_shorter_side(image, short_side))
    rh, rw = chw.shape[1:]
    m = input_multiple(net.backbone)  # ViT patches: zero-pad bottom/right (as SAM), crop the features
    x = jt.array(np.pad(chw, ((0, 0), (0, -rh % m), (0, -rw % m)))[None])
    with jt.no_grad():
        u_n, attention = net.dense(x)  # [1, D, h', w'], [1, 1, h', w'] of the padded input
        ph, pw = int(u_n.shape[2]), int(u_n.shape[3])
        vh, vw = -(-rh * ph // x.shape[2]), -(-rw * pw // x.shape[3])
        u_n, attention = u_n[:, :, :vh, :vw], attention[:, :, :vh, :vw]
        attention = nn.interpolate(attention, size=(h, w), mode="bilinear", align_corners=False)
        d, fh, fw = (int(v) for v in u_n.shape[1:])
        cos = jt.matmul(jt.array(centroids), u_n.reshape(d, fh * fw))  # [C, h'w']
        ids = cos.argmax(dim=0)[0].numpy().reshape(fh, fw).astype(np.int32) + 1
    return nearest_resize_labels(ids, h, w), attention.numpy()[0, 0].astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)

"""Checking a real data set before any training: every image decoded once, every file name parsed.

Unchecked, a corrupt JPEG in ``bounding_box_test/`` would surface only at evaluation, after the whole run has
trained. :func:`verify` decodes every image of a data set in parallel (with a progress bar), caches the verdict
by the files' names, sizes and modification times, and raises one :class:`~henetlib.data.images.DataError` that
lists the bad files (the first 10 and a count) and says how to fix or skip them. With ``skip_bad_images`` the
data set comes back without them, and ``ds.skipped`` lists what was left out (results record it). ``ds`` is a
:class:`henetlib.data.datasets.ReIDDataset`; this module sits below :mod:`henetlib.data.datasets` (which calls
it) and so takes it by duck type.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from tqdm.auto import tqdm

from henetlib.data.images import DataError, read_image
from henetlib.system.files import atomic_write_json, data_dir, stable_hash

logger = logging.getLogger(__name__)

SHOWN = 10  # bad files listed by name in the error


def _problem(path: str) -> str | None:
    try:
        img = read_image(path)
    except DataError as e:
        return str(e).split(": ", 1)[-1]
    if img.shape[-1] < 2 or img.shape[-2] < 2:
        return f"image is only {tuple(img.shape[-2:])} pixels"
    return None


def _content_key(ds: Any) -> str:
    files = []
    for s in ds.train + ds.query + ds.gallery:
        try:
            st = os.stat(s.path)
            files.append((s.path, st.st_size, st.st_mtime_ns))
        except OSError:
            files.append((s.path, -1, -1))
    return stable_hash([ds.name, files, sorted(ds.unparsed)])


def scan(ds: Any, workers: int | None = None, progress: bool = True) -> dict[str, str]:
    """{path: problem} for every file of ``ds`` that cannot be used; cached under ``data/.checks/``."""
    cache = data_dir() / ".checks" / f"{_content_key(ds)}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            pass  # a damaged cache of the check: check again
    bad = {p: why for p, why in ds.unparsed.items()}
    paths = sorted({s.path for s in ds.train + ds.query + ds.gallery})
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:  # OpenCV decodes without the GIL
        results = pool.map(_problem, paths, chunksize=64)
        for p, why in tqdm(zip(paths, results, strict=True), total=len(paths), desc=f"checking {ds.name}",
                           disable=not progress, leave=False):
            if why:
                bad[p] = why
    atomic_write_json(cache, bad)
    return bad


def cross_camera_queries(ds: Any) -> int:
    """How many queries have a true match in the gallery from another camera: the only ones the re-ID
    protocol scores (same-identity same-camera gallery images are removed, Zheng et al. 2015)."""
    cams: dict[int, set[int]] = {}
    for s in ds.gallery:
        cams.setdefault(s.pid, set()).add(s.camid)
    return sum(1 for q in ds.query if cams.get(q.pid, set()) - {q.camid})


def check_protocol(ds: Any) -> None:
    """Refuse, before anything is decoded or trained, a data set whose evaluation would score no query."""
    if not ds.query or not ds.gallery:
        raise DataError(f"{ds.name} ({ds.root}) has {len(ds.query)} query and {len(ds.gallery)} gallery images: "
                        "both folders are needed (query/ and bounding_box_test/ in the Market-1501 layout).")
    if cross_camera_queries(ds) == 0:
        raise DataError(
            f"none of the {len(ds.query)} queries of {ds.name} ({ds.root}) has a gallery image of the same identity "
            "from another camera, so the protocol would score no query and every metric would be empty. Check "
            "that query/ and bounding_box_test/ come from the same data set (same identity numbers) and that the "
            "file names carry the right camera (0002_c1s1_000451_03.jpg: identity 0002, camera 1).")


def verify(ds: Any, skip_bad_images: bool = False, progress: bool = True) -> Any:
    """``ds`` if every file is usable; else one clear error, or (``skip_bad_images``) ``ds`` without them.
    First, from the names alone, that its evaluation can score a query at all (:func:`check_protocol`)."""
    check_protocol(ds)
    bad = scan(ds, progress=progress)
    if not bad:
        return ds
    if not skip_bad_images:
        listed = "\n".join(f"  {p}: {why}" for p, why in sorted(bad.items())[:SHOWN])
        more = f"\n  ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        raise DataError(
            f"{len(bad)} file(s) of {ds.name} ({ds.root}) cannot be used:\n{listed}{more}\n"
            "Fix them (re-extract or re-download the data set, rename files to the layout's pattern "
            "0002_c1s1_000451_03.jpg), delete them, or train without them: --skip-bad-images "
            "(skip_bad_images=True), which records the skipped files in each result."
        )
    keep = lambda split: [s for s in split if s.path not in bad]  # noqa: E731
    out = replace(ds, train=keep(ds.train), query=keep(ds.query), gallery=keep(ds.gallery))
    out.skipped = sorted(bad)
    if progress:
        logger.warning("%s: skipping %d unusable file(s) (--skip-bad-images); e.g. %s", ds.name, len(bad),
                       sorted(bad)[0])
    return out


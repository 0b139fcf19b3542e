"""SynthReID: a procedural pedestrian data set written in the Market-1501 layout.

No real re-ID data set can be had on the project's machines, so the study makes its own. The generator is
built to behave like a re-ID benchmark rather than like noise:

* An identity is a fixed appearance: body proportions, skin, hair (short, long, bald, cap), upper clothing
  (colour from a small palette plus jitter, and a pattern: plain, horizontal stripes, vertical stripes,
  checks, a logo), lower clothing (trousers, shorts, skirt; plain or striped), shoes, and an optional bag,
  backpack or hat. The palette is small on purpose: many identities share their main colours, so the
  model must use several cues at once.
* Each image sees the identity through one of 6 cameras, each with its own illumination gain, colour cast,
  blur and noise; over a background of its own kind (street, wall, park), with pose (stride, arm swing,
  facing front or back: the backpack is seen from behind), scale and detector-like crop misalignment.
* A share of images carries irregular occluders: bicycles, poles, bags, other people, foliage blobs.
  The occluded query images are listed in ``occluded.txt`` so the evaluation can score them apart.
* Training-set images of pid 0000 are unlabeled passers-by (for OIM's queue); gallery images of pid 0000
  are distractors, as in Market-1501.

Everything is drawn from ``numpy.random.default_rng`` seeded by (seed, identity, image), so the set is
deterministic from its seed and independent of the number of worker processes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from henetlib.data.staging import staging_folder, swap_in
from henetlib.system.files import RunLock

logger = logging.getLogger(__name__)

NUM_CAMERAS = 6

# A small palette (BGR): shared colours make identities collide on any single cue. Like a real crowd, most
# clothing is dark or neutral (black, grey, white, navy, denim, brown): PALETTE_P weights them.
PALETTE = np.array([
    [30, 30, 30], [235, 235, 235], [120, 120, 120], [90, 45, 30], [150, 100, 60], [40, 55, 75],
    [40, 40, 170], [40, 140, 40], [40, 190, 220], [130, 50, 120], [30, 90, 200], [180, 130, 200],
    [60, 100, 160], [160, 160, 60],
], dtype=np.float32)
PALETTE_P = np.array([0.2, 0.1, 0.12, 0.12, 0.1, 0.08, 0.04, 0.04, 0.04, 0.03, 0.04, 0.03, 0.03, 0.03])
SKIN = np.array([[170, 200, 240], [120, 160, 210], [80, 120, 170], [50, 80, 120]], dtype=np.float32)
HAIR = np.array([[20, 20, 20], [30, 60, 100], [60, 120, 180], [180, 180, 180], [20, 30, 60]], dtype=np.float32)


@dataclass(frozen=True)
class SynthProfile:
    """Sizes of one version of the set."""

    name: str
    train_ids: int
    test_ids: int
    train_images_per_id: tuple[int, int]  # inclusive range
    gallery_images_per_id: tuple[int, int]
    unlabeled_train: int
    distractors: int
    height: int = 128
    width: int = 64
    occlusion_rate: float = 0.25
    seed: int = 0
    # the share of occluded training images when it differs from the test splits' (None: occlusion_rate);
    # a testbed knob of the calibration search (docs/READINGS.md, "Testbed calibration")
    train_occlusion_rate: float | None = None


PROFILES = {
    # The test suite: every notebook end to end in seconds.
    "tiny": SynthProfile("tiny", train_ids=16, test_ids=12, train_images_per_id=(5, 7),
                         gallery_images_per_id=(3, 5), unlabeled_train=8, distractors=10),
    # CPU smoke runs: the whole study in minutes.
    "small": SynthProfile("small", train_ids=100, test_ids=100, train_images_per_id=(8, 12),
                          gallery_images_per_id=(4, 7), unlabeled_train=80, distractors=100),
    # The smoke profile's set: half of small's training identities, the same test size, so that
    # the converged smoke study trains within the 10-minute CPU budget (docs/READINGS.md, "Smoke profile").
    # Occluders on half of the images of every split: the testbed the calibration search chose (the only
    # candidate knob under which a positive control passes; docs/READINGS.md, "Testbed calibration").
    "smoke": SynthProfile("smoke", train_ids=50, test_ids=100, train_images_per_id=(8, 12),
                          gallery_images_per_id=(4, 7), unlabeled_train=40, distractors=100, occlusion_rate=0.5),
    # Market-like: 750 + 750 identities at 128 x 64.
    "full": SynthProfile("full", train_ids=750, test_ids=750, train_images_per_id=(12, 22),
                         gallery_images_per_id=(10, 20), unlabeled_train=600, distractors=2000),
    # Pretraining sets (henetlib.engine.pretrain, a stand-in for ImageNet): seed 1, so their identities, cameras and
    # backgrounds are their own; none is shared with the study's sets (seed 0), which a test checks.
    "pretrain-small": SynthProfile("pretrain-small", train_ids=600, test_ids=100, train_images_per_id=(8, 12),
                                   gallery_images_per_id=(4, 7), unlabeled_train=0, distractors=50, seed=1),
    "pretrain-full": SynthProfile("pretrain-full", train_ids=1500, test_ids=250, train_images_per_id=(12, 22),
                                  gallery_images_per_id=(10, 20), unlabeled_train=0, distractors=500, seed=1),
}


@dataclass
class Identity:
    height: float
    width: float
    head: float
    leg: float
    skin: np.ndarray
    hair: np.ndarray
    hair_style: int  # 0 short, 1 long, 2 bald, 3 cap
    upper: np.ndarray
    upper2: np.ndarray
    upper_pattern: int  # 0 plain, 1 h-stripes, 2 v-stripes, 3 checks, 4 logo
    stripe: int
    lower: np.ndarray
    lower2: np.ndarray
    lower_type: int  # 0 trousers, 1 shorts, 2 skirt
    lower_striped: bool
    shoes: np.ndarray
    accessory: int  # 0 none, 1 bag, 2 backpack, 3 hat
    acc_color: np.ndarray
    sleeves: bool
    cams: np.ndarray  # cameras this identity walks past


def _color(rng: np.random.Generator, palette: np.ndarray, jitter: float = 18.0,
           p: np.ndarray | None = None) -> np.ndarray:
    p = p / p.sum() if p is not None else None
    return np.clip(palette[rng.choice(len(palette), p=p)] + rng.normal(0, jitter, 3), 0, 255)


def make_identity(seed: int, pid: int) -> Identity:
    rng = np.random.default_rng([seed, 1, pid])
    n_cams = int(rng.integers(2, NUM_CAMERAS + 1))
    return Identity(
        height=float(rng.uniform(0.78, 0.95)), width=float(rng.uniform(0.8, 1.2)),
        head=float(rng.uniform(0.11, 0.14)), leg=float(rng.uniform(0.42, 0.5)),
        skin=_color(rng, SKIN, 10), hair=_color(rng, HAIR, 10), hair_style=int(rng.integers(4)),
        upper=_color(rng, PALETTE, p=PALETTE_P), upper2=_color(rng, PALETTE, p=PALETTE_P),
        upper_pattern=int(rng.choice(5, p=[.4, .2, .1, .15, .15])),
        stripe=int(rng.integers(3, 7)), lower=_color(rng, PALETTE[:6], p=PALETTE_P[:6]),
        lower2=_color(rng, PALETTE, p=PALETTE_P),
        lower_type=int(rng.choice(3, p=[.65, .2, .15])), lower_striped=bool(rng.random() < 0.15),
        shoes=_color(rng, PALETTE[:4], 10), accessory=int(rng.choice(4, p=[.45, .2, .2, .15])),
        acc_color=_color(rng, PALETTE, p=PALETTE_P), sleeves=bool(rng.random() < 0.6),
        cams=np.sort(rng.choice(NUM_CAMERAS, n_cams, replace=False)),
    )


@dataclass(frozen=True)
class Camera:
    gain: float
    cast: tuple[float, float, float]
    blur: float
    noise: float
    scene: int  # 0 street, 1 wall, 2 park
    base: tuple[float, float, float]


def make_cameras(seed: int) -> list[Camera]:
    rng = np.random.default_rng([seed, 2])
    cams = []
    for c in range(NUM_CAMERAS):
        cams.append(Camera(gain=float(rng.uniform(0.6, 1.25)), cast=tuple(rng.uniform(0.72, 1.28, 3).tolist()),
                           blur=float(rng.uniform(0.0, 1.2)), noise=float(rng.uniform(3, 10)), scene=c % 3,
                           base=tuple(rng.uniform(60, 200, 3).tolist())))
    return cams


def _background(rng: np.random.Generator, cam: Camera, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    base = np.array(cam.base) + rng.normal(0, 15, 3)
    grad = np.linspace(0.85, 1.1, h, dtype=np.float32)[:, None, None]
    img[:] = base * grad
    ground = int(h * rng.uniform(0.7, 0.85))
    img[ground:] = np.clip(base * 0.6 + rng.normal(0, 10, 3), 0, 255)
    for _ in range(int(rng.integers(2, 6))):  # buildings, windows, trees by scene kind
        x0, y0 = int(rng.integers(-10, w)), int(rng.integers(-10, ground))
        x1, y1 = x0 + int(rng.integers(6, 30)), y0 + int(rng.integers(6, 50))
        col = np.clip(base + rng.normal(0, 45, 3), 0, 255).tolist()
        if cam.scene == 2:
            cv2.ellipse(img, (x0, y0), (int(rng.integers(6, 18)), int(rng.integers(8, 22))), 0, 0, 360,
                        (40 + rng.uniform(0, 40), 110 + rng.uniform(0, 60), 40 + rng.uniform(0, 40)), -1)
        else:
            cv2.rectangle(img, (x0, y0), (x1, y1), col, -1)
    return img


def _limb(img, p0, p1, thick, color):
    cv2.line(img, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), color, max(1, int(thick)), cv2.LINE_AA)


def _draw_person(img: np.ndarray, ident: Identity, rng: np.random.Generator, cx: float, top: float,
                 scale: float, back: bool, light: float = 1.0) -> None:
    h = img.shape[0]
    body_h = h * ident.height * scale
    head_r = body_h * ident.head / 2
    sw = body_h * 0.16 * ident.width  # half shoulder width
    neck_y = top + 2 * head_r
    hip_y = neck_y + body_h * (1 - ident.head - ident.leg)
    foot_y = top + body_h
    stride = rng.uniform(-0.12, 0.12) * body_h
    swing = rng.uniform(-0.1, 0.1) * body_h
    col = lambda c: (np.asarray(c) * light).tolist()  # noqa: E731
    # backpack behind the body when seen from behind; bag on the side
    if ident.accessory == 2 and back:
        cv2.rectangle(img, (int(cx - sw * 0.8), int(neck_y + 2)), (int(cx + sw * 0.8), int(hip_y - 2)),
                      col(ident.acc_color), -1)
    # legs
    leg_w = sw * 0.55
    for sgn in (-1, 1):
        hip = (cx + sgn * sw * 0.45, hip_y)
        foot = (cx + sgn * sw * 0.4 + sgn * stride * 0.5, foot_y - 2)
        knee = ((hip[0] + foot[0]) / 2, (hip[1] + foot[1]) / 2)
        lower_col = ident.lower2 if (ident.lower_striped and sgn > 0) else ident.lower
        if ident.lower_type == 1:  # shorts: cloth to the knee, skin below
            _limb(img, hip, knee, leg_w, col(lower_col))
            _limb(img, knee, foot, leg_w * 0.7, col(ident.skin))
        else:
            _limb(img, hip, foot, leg_w, col(lower_col))
        cv2.ellipse(img, (int(foot[0]), int(foot_y - 2)), (max(1, int(leg_w * 0.7)), max(1, int(leg_w * 0.35))),
                    0, 0, 360, col(ident.shoes), -1)
    if ident.lower_type == 2:  # skirt
        pts = np.array([[cx - sw * 0.7, hip_y - 3], [cx + sw * 0.7, hip_y - 3], [cx + sw * 1.1, hip_y + body_h * 0.2],
                        [cx - sw * 1.1, hip_y + body_h * 0.2]], np.int32)
        cv2.fillConvexPoly(img, pts, col(ident.lower), cv2.LINE_AA)
    # torso
    x0, x1 = int(cx - sw), int(cx + sw)
    y0, y1 = int(neck_y), int(hip_y)
    cv2.rectangle(img, (x0, y0), (x1, y1), col(ident.upper), -1)
    th = max(y1 - y0, 1)
    if ident.upper_pattern == 1:
        for k in range(0, th, max(2, th // ident.stripe)):
            if (k // max(2, th // ident.stripe)) % 2:
                cv2.rectangle(img, (x0, y0 + k), (x1, min(y1, y0 + k + max(1, th // ident.stripe // 2 + 1))),
                              col(ident.upper2), -1)
    elif ident.upper_pattern == 2:
        step = max(2, (x1 - x0) // ident.stripe)
        for k in range(x0, x1, 2 * step):
            cv2.rectangle(img, (k, y0), (min(x1, k + step - 1), y1), col(ident.upper2), -1)
    elif ident.upper_pattern == 3:
        step = max(2, (x1 - x0) // 3)
        for i, yy in enumerate(range(y0, y1, step)):
            for j, xx in enumerate(range(x0, x1, step)):
                if (i + j) % 2:
                    cv2.rectangle(img, (xx, yy), (min(x1, xx + step - 1), min(y1, yy + step - 1)),
                                  col(ident.upper2), -1)
    elif ident.upper_pattern == 4 and not back:  # a logo on the chest, seen from the front only
        cv2.circle(img, (int(cx), int(y0 + th * 0.35)), max(1, int(sw * 0.45)), col(ident.upper2), -1)
    # arms
    for sgn in (-1, 1):
        sh_ = (cx + sgn * sw, neck_y + 2)
        hand = (cx + sgn * (sw + 2) - sgn * swing * 0.3 * sgn + swing * (0.5 if sgn > 0 else -0.5), hip_y + 2)
        _limb(img, sh_, hand, sw * 0.4, col(ident.upper if ident.sleeves else ident.skin))
        cv2.circle(img, (int(hand[0]), int(hand[1])), max(1, int(sw * 0.22)), col(ident.skin), -1)
    if ident.accessory == 1:  # shoulder bag on the right hip
        cv2.rectangle(img, (int(cx + sw * 0.6), int(hip_y - th * 0.25)), (int(cx + sw * 1.5), int(hip_y + th * 0.1)),
                      col(ident.acc_color), -1)
    if ident.accessory == 2 and not back:  # backpack straps from the front
        for sgn in (-1, 1):
            _limb(img, (cx + sgn * sw * 0.5, neck_y), (cx + sgn * sw * 0.5, hip_y - 3), max(1, sw * 0.15),
                  col(ident.acc_color))
    # head and hair
    hc = (int(cx), int(top + head_r))
    r = max(2, int(head_r))
    cv2.circle(img, hc, r, col(ident.hair if back and ident.hair_style != 2 else ident.skin), -1, cv2.LINE_AA)
    if ident.hair_style in (0, 1):
        cv2.ellipse(img, hc, (r, r), 0, 180, 360, col(ident.hair), -1, cv2.LINE_AA)
        if ident.hair_style == 1:
            cv2.rectangle(img, (hc[0] - r, hc[1]), (hc[0] + r, hc[1] + int(r * 1.6)), col(ident.hair), -1)
            if not back:
                cv2.circle(img, hc, max(1, int(r * 0.7)), col(ident.skin), -1)
    if ident.hair_style == 3 or ident.accessory == 3:
        cap = ident.acc_color if ident.accessory == 3 else ident.hair
        cv2.ellipse(img, hc, (r + 1, r), 0, 180, 360, col(cap), -1, cv2.LINE_AA)


def _occlude(img: np.ndarray, rng: np.random.Generator, seed: int) -> None:
    h, w = img.shape[:2]
    kind = int(rng.integers(5))
    c = rng.uniform(20, 230, 3).tolist()
    if kind == 0:  # bicycle: two wheels and a frame, lower body
        y = int(h * rng.uniform(0.7, 0.88))
        r = int(h * rng.uniform(0.1, 0.14))
        xa = int(rng.uniform(0, w * 0.5))
        xb = xa + int(2.4 * r)
        for x in (xa, xb):
            cv2.circle(img, (x, y), r, c, max(1, r // 5), cv2.LINE_AA)
        cv2.line(img, (xa, y), ((xa + xb) // 2, y - r), c, 2)
        cv2.line(img, ((xa + xb) // 2, y - r), (xb, y), c, 2)
    elif kind == 1:  # pole
        x = int(rng.uniform(0.2, 0.8) * w)
        cv2.rectangle(img, (x, 0), (x + int(rng.integers(4, 10)), h), c, -1)
    elif kind == 2:  # a bag or box in front
        x, y = int(rng.uniform(0, w * 0.6)), int(rng.uniform(h * 0.45, h * 0.8))
        cv2.rectangle(img, (x, y), (x + int(w * rng.uniform(0.3, 0.5)), y + int(h * rng.uniform(0.15, 0.3))), c, -1)
    elif kind == 3:  # another person walking past (a random identity, partly in view)
        other = make_identity(seed + 7919, int(rng.integers(1_000_000)))
        _draw_person(img, other, rng, cx=float(rng.choice([rng.uniform(-0.1, 0.2), rng.uniform(0.8, 1.1)]) * w),
                     top=h * rng.uniform(0.02, 0.15), scale=rng.uniform(0.9, 1.1), back=bool(rng.random() < 0.5))
    else:  # foliage: an irregular green blob
        ctr = np.array([rng.uniform(0, w), rng.uniform(h * 0.3, h)])
        ang = np.sort(rng.uniform(0, 2 * np.pi, 9))
        rad = rng.uniform(0.15, 0.35, 9) * h
        pts = (ctr + np.stack([np.cos(ang) * rad * 0.6, np.sin(ang) * rad], 1)).astype(np.int32)
        cv2.fillPoly(img, [pts], (30 + rng.uniform(0, 40), 100 + rng.uniform(0, 80), 30 + rng.uniform(0, 40)),
                     cv2.LINE_AA)


def render(seed: int, ident: Identity, cams: list[Camera], cam: int, key: tuple, h: int, w: int,
           occluded: bool) -> np.ndarray:
    """One image (BGR uint8) of ``ident`` seen by camera ``cam``; ``key`` makes the draw unique."""
    rng = np.random.default_rng([seed, 3, *key])
    cm = cams[cam]
    img = _background(rng, cm, h, w)
    # detector-like crop: the person is off-centre and mis-scaled
    cx = w / 2 + rng.normal(0, 0.07) * w
    scale = rng.uniform(0.88, 1.08)
    top = h * (0.04 + rng.normal(0, 0.025)) + (1 - scale) * h * 0.5
    _draw_person(img, ident, rng, cx, top, scale, back=bool(rng.random() < 0.5))
    if occluded:
        _occlude(img, rng, seed)
    # camera colour cast, plus a per-image white-balance drift and a soft shadow across the body
    wb = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    shade = np.linspace(rng.uniform(0.75, 1.1), rng.uniform(0.75, 1.1), w, dtype=np.float32)[None, :, None]
    img = img * cm.gain * np.array(cm.cast, np.float32) * wb * shade * rng.uniform(0.85, 1.15)
    if cm.blur > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), cm.blur)
    img += rng.normal(0, cm.noise, img.shape).astype(np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.clip(img, 0, 255).astype(np.uint8)


def _plan(p: SynthProfile) -> list[tuple]:
    """Every image to write: (folder, pid, camera, index within id, occluded, identity seed)."""
    rng = np.random.default_rng([p.seed, 4])
    train_rate = p.occlusion_rate if p.train_occlusion_rate is None else p.train_occlusion_rate
    jobs = []
    for pid in range(1, p.train_ids + 1):
        ident = make_identity(p.seed, pid)
        n = int(rng.integers(p.train_images_per_id[0], p.train_images_per_id[1] + 1))
        for i in range(n):
            jobs.append(("bounding_box_train", pid, int(ident.cams[i % len(ident.cams)]), i,
                         bool(rng.random() < train_rate)))
    for pid in range(p.train_ids + 1, p.train_ids + p.test_ids + 1):
        ident = make_identity(p.seed, pid)
        for c in ident.cams:  # one query per camera, as Market
            jobs.append(("query", pid, int(c), 1000 + int(c), bool(rng.random() < p.occlusion_rate)))
        n = int(rng.integers(p.gallery_images_per_id[0], p.gallery_images_per_id[1] + 1))
        for i in range(n):
            jobs.append(("bounding_box_test", pid, int(ident.cams[i % len(ident.cams)]), i,
                         bool(rng.random() < p.occlusion_rate)))
    for i in range(p.unlabeled_train):
        jobs.append(("bounding_box_train", 0, int(rng.integers(NUM_CAMERAS)), 10_000 + i, False))
    for i in range(p.distractors):
        jobs.append(("bounding_box_test", 0, int(rng.integers(NUM_CAMERAS)), 20_000 + i, False))
    return jobs


def _render_chunk(args: tuple) -> list[tuple[str, bool]]:
    p, out, jobs = args
    cams = make_cameras(p.seed)
    written = []
    for folder, pid, cam, idx, occ in jobs:
        # pid 0 images are each a different passer-by
        ident = make_identity(p.seed, pid if pid else 1_000_000 + idx)
        img = render(p.seed, ident, cams, cam, (pid, cam, idx), p.height, p.width, occ)
        name = f"{pid:04d}_c{cam + 1}s1_{idx:06d}_00.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (Path(out) / folder / name).write_bytes(buf.tobytes())
        written.append((f"{folder}/{name}", occ))
    return written


def generate(root: str | Path, profile: str | SynthProfile = "small", workers: int | None = None,
             force: bool = False, verbose: bool = True) -> Path:
    """Write SynthReID into ``root/<profile>`` (Market-1501 layout) unless it is already complete.

    The set is written into a temporary folder and renamed at the end, so an interrupted generation never
    leaves a half set that looks complete. Returns the data set folder.
    """
    if isinstance(profile, str) and profile not in PROFILES:
        raise ValueError(f"unknown SynthReID profile {profile!r}; use one of {sorted(PROFILES)}.")
    p = PROFILES[profile] if isinstance(profile, str) else profile
    dest = Path(root) / p.name
    if not force and _complete(dest, p):
        return dest
    # DDP ranks and sharded jobs on one folder generate it once: the others wait, then find it complete
    with RunLock(root, f".{p.name}.lock"):
        if not force and _complete(dest, p):
            return dest
        return _write(root, dest, p, workers, verbose)


def _complete(dest: Path, p: SynthProfile) -> bool:
    stamp = dest / "synthreid.json"
    if not stamp.exists():
        return False
    # None-valued fields are left out on both sides: a set stamped before a field existed is the same set
    def settings(d: dict) -> dict:
        return {k: v for k, v in d.items() if v is not None}

    have = json.loads(stamp.read_text()).get("profile", {})
    return settings(have) == settings(json.loads(json.dumps(asdict(p))))  # tuples -> lists


def _write(root: str | Path, dest: Path, p: SynthProfile, workers: int | None, verbose: bool) -> Path:
    tmp = staging_folder(root, p.name)
    jobs = _plan(p)
    workers = workers or min(4, os.cpu_count() or 1)
    chunks = [jobs[i :: max(1, workers * 4)] for i in range(max(1, workers * 4))]
    t0 = time.time()
    if verbose:
        logger.info("SynthReID: generating the '%s' set (%d images) into %s ...", p.name, len(jobs), dest)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(_render_chunk, [(p, str(tmp), c) for c in chunks]))
    else:
        results = [_render_chunk((p, str(tmp), c)) for c in chunks]
    occluded = sorted(name for r in results for name, occ in r if occ and name.startswith("query/"))
    (tmp / "occluded.txt").write_text("\n".join(occluded) + "\n")
    seconds = time.time() - t0
    (tmp / "synthreid.json").write_text(json.dumps({"profile": asdict(p), "images": len(jobs),
                                                   "seconds": round(seconds, 1)}, indent=2))
    swap_in(tmp, dest)
    if verbose:
        logger.info("SynthReID: %d images in %.1f s.", len(jobs), seconds)
    return dest


def occluded_queries(root: str | Path) -> set[str]:
    """File names of the query images that carry an occluder (empty for sets without the list)."""
    f = Path(root) / "occluded.txt"
    if not f.exists():
        return set()
    return {Path(line).name for line in f.read_text().split() if line}

"""Small data sets for the data tests: a Market-1501 folder from a list of file names, and a tiny SynthReID
profile. Not a test module."""

from PIL import Image

from henetlib.data.synth import SynthProfile

TINY = SynthProfile("tiny", train_ids=12, test_ids=10, train_images_per_id=(4, 6), gallery_images_per_id=(3, 4),
                    unlabeled_train=6, distractors=5, seed=3)

MARKET_NAMES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s3_015618_01.jpg",
                           "0000_c1s1_000001_00.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c2s1_000001_00.jpg"],
    "bounding_box_test": ["0001_c2s1_000151_01.jpg", "0000_c3s1_000001_00.jpg", "-1_c1s1_000401_03.jpg",
                          "0003_c5s1_000301_02.jpg"],
}


def write_image(path, color=(10, 20, 30), size=(16, 8)):
    """A plain ``size`` (height, width) RGB image of one colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), color).save(path)


def make_market(root, names):
    """A Market-1501-layout folder holding one small image per name: {split folder: [file names]}."""
    for split, files in names.items():
        for f in files:
            write_image(root / split / f)
    return root

"""henetlib: a reproducible study of HENet (Hierarchical and Efficient Learning for Person Re-Identification).

Modules, one per concern:

* :mod:`henetlib.model` - HENet (G1, P(k), R16) and its constructor.
* :mod:`henetlib.losses` - CE, batch-hard triplet, OIM, reconstruction, and their per-branch combination.
* :mod:`henetlib.rpe` - Random Polygon Erasing (per image and batched), Random Erasing, RE+RPE.
* :mod:`henetlib.data` - re-ID data sets, the P x K sampler, transforms, the GPU-resident loader.
* :mod:`henetlib.synth` - SynthReID, the embedded procedural data set.
* :mod:`henetlib.evaluation` - CMC, mAP, mINP, re-ranking, feature extraction, ranked lists.
* :mod:`henetlib.efficiency` - FD, size, speed and the Efficiency Score (eqs. 10-11).
* :mod:`henetlib.cam` - per-branch class activation maps.
* :mod:`henetlib.train` / :mod:`henetlib.experiments` - the training engine and the cached runner.
"""

__version__ = "0.1.0"

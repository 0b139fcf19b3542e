"""Re-ID data: Market-1501-style, DukeMTMC-reID and CUHK03-NP folders, the P x K sampler and the device-resident
store (``datasets``), the embedded procedural data set SynthReID (``synth``), FractalDB-style images
(``fractal``), image decoding (``images``), checks of a folder before training (``check``) and atomic staging
of generated sets (``staging``)."""

"""The study: the paper's tables and figures as grids of training configurations (``grids``), the tables
with ours beside the paper's (``tables``), what is computed from a trained model (``derived``), the stored
seed-noise model and whether it applies (``noise_model``), publishing results trained elsewhere
(``publish``) and ``make reproduce`` (``reproduce``)."""

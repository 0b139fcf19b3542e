"""The paper's method: HENet with its G1, P(k) and R16 branches (``model``), its losses: CE, batch-hard
triplet, OIM and R16's MSE (``losses``), Random Polygon Erasing and Random Erasing (``rpe``), and the graphs
of the methods Table 1 compares it with (``peers``). The bottom wing: it imports only ``henetlib.system``."""

"""The paper's published numbers, for printing beside ours (never used as our results)."""

from __future__ import annotations

# Table 1 (Market-1501 R1/mAP in %, FD, V in MB, S in FPS, ES).
TABLE1 = {
    "AlignedReID": dict(r1=91.8, mAP=79.3, fd=2048, v=100, s=207, es=2.55),
    "PCB": dict(r1=93.1, mAP=81.0, fd=1536, v=102, s=192, es=3.45),
    "HPM": dict(r1=94.2, mAP=82.7, fd=3840, v=356, s=82, es=1.00),
    "MGN": dict(r1=95.7, mAP=86.9, fd=2816, v=263, s=112, es=2.42),
    "HENet(Base)": dict(r1=92.9, mAP=79.6, fd=2048, v=169, s=160, es=2.76),
    "HENet(+RPE)": dict(r1=93.6, mAP=81.2, fd=2048, v=169, s=160, es=3.08),
    "HENet(+Losses)": dict(r1=95.6, mAP=86.8, fd=2560, v=224, s=138, es=3.41),
    "HENet(+Both)": dict(r1=96.0, mAP=87.2, fd=2560, v=224, s=138, es=3.52),
}

# Table 2: structure analysis, keyed by stripes. Values: FD, R1, R5, R10, mAP.
TABLE2 = {
    (1,): (512, 87.92, 95.46, 96.97, 68.48),
    (1, 2): (1536, 90.15, 95.52, 97.08, 70.03),
    (1, 2, 3): (2816, 90.41, 95.64, 97.09, 71.43),
    (1, 2, 3, 4): (4352, 90.81, 95.84, 97.48, 72.39),
    (1, 3): (1792, 90.08, 95.64, 97.12, 70.12),
    (1, 4): (2048, 90.17, 95.68, 97.30, 70.39),
    (1, 6): (2560, 90.24, 95.78, 97.39, 70.72),
}

# Table 3: branch ablation, keyed by (G1, P4, R16). Values: R1, R5, R10, mAP, FD.
TABLE3 = {
    (True, False, False): (87.92, 95.46, 96.97, 68.48, 512),
    (False, True, False): (89.67, 95.81, 96.97, 69.55, 1536),
    (False, False, True): (84.29, 93.65, 95.96, 58.69, 512),
    (True, True, False): (90.17, 95.68, 97.30, 70.39, 2048),
    (True, False, True): (88.98, 95.28, 96.91, 70.42, 1024),
    (False, True, True): (90.15, 95.89, 97.16, 70.34, 2048),
    (True, True, True): (90.62, 96.21, 97.52, 70.97, 2560),
}

# Table 4: loss ablation on G1+P4+R16, keyed by (OIM, Tri, MSE). Values: R1, R5, R10, mAP.
# The extraction of the paper's check marks is ambiguous for the single-loss rows; we read the rows in
# the order none, OIM, Tri, MSE, OIM+Tri, OIM+MSE, Tri+MSE, all, the usual order of such an ablation.
TABLE4 = {
    (False, False, False): (88.72, 95.43, 97.12, 69.69),
    (True, False, False): (91.33, 96.02, 97.74, 73.42),
    (False, True, False): (92.62, 96.91, 98.15, 78.02),
    (False, False, True): (90.43, 95.90, 97.18, 71.65),
    (True, True, False): (92.90, 97.30, 98.25, 80.04),
    (True, False, True): (91.65, 96.56, 97.83, 74.37),
    (False, True, True): (93.20, 97.68, 98.40, 79.90),
    (True, True, True): (93.67, 97.84, 98.63, 80.60),
}

# Fig. 4 is a plot; the text gives one point: RE+RPE(20) at p = 0.5 reaches R1 93.72, mAP 80.53.
FIG4_TEXT = {"RE+RPE(20)": {0.5: (93.72, 80.53)}}

# Fig. 4's points at p = 0.5, keyed by our method labels. Only RE+RPE(20) is given in the text; the
# others exist only as a plot, so their differences are left unknown (NaN) rather than guessed.
FIG4_P05 = {"RE+RPE(20)": {"R1": 93.72, "mAP": 80.53}}

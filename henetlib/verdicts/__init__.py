"""Verdicts: the paper's comparative sentences as claims (``claims``), the per-query scores they are tested
on (``scores``), the scoreboard that judges them (``scoreboard``), and the estimation and checks of the
seed-noise model their intervals carry (``noise``). The top wing: it reads the study's tables."""

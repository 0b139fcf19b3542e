"""Output for print and for the notebooks: one figure style (``style``), captions and the sentences that say
what a figure shows (``prose``), tables formatted for a reader (``formats``), plots (``plots``), LaTeX and
its check (``latex``), writing tables and figures (``export``), class activation maps (``cam``) and the RPE
lesson (``lesson``). It reads the wings below it and computes no result of the study."""

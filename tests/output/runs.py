"""Stand-ins for trained results, for the output tests: what the training curves and their note read. Not a
test module."""

from types import SimpleNamespace


def fake_runs():
    """Three runs: one converged (fit gain 0.5), one not (4.0), one without a regime check or history."""

    def res(name, gain, conv):
        hist = [{"epoch": e, "loss": 3.0 / (e + 1)} for e in range(5)]
        reg = {"train_fit_check": {"mAP": 50.0}, "train_fit": {"mAP": 50.0 + gain}, "fit_gain_last": gain,
               "converged": conv}
        return SimpleNamespace(name=name, history=hist, regime=reg)

    return [res("a", 0.5, True), res("b", 4.0, False), SimpleNamespace(name="c", history=[], regime={})]

"""The engine: a training configuration and its profiles (``config``), the training loop (``train``),
ranking evaluation (``evaluation``) and the evaluation of a trained model (``evaluator``), the result cache
(``cache``), backbone pretraining (``pretrain``), the regime check (``regime``), and efficiency: FD, V, S and
the Efficiency Score (``efficiency``). It reads ``method`` and ``data``."""

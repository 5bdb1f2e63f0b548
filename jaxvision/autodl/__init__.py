"""AutoDL (ChaLearn AutoDL 2019): format, protocol, scoring and a modular solution.

AutoDL is a time-budgeted driver of its own and does not use the core training
loop (jaxvision.core.loop): a submission's `train`/`test` are called
repeatedly by an ingestion process under a wall-clock budget, and a separate
scorer turns the timestamped predictions into an ALC (DESIGN.md §3 allows
this). Modules: data (TFRecord format without TensorFlow), ingestion, scoring,
run (the protocol CLI), solution (the learner), demo (embedded datasets).
"""

"""The reproduction harness of the magnet-loss paper (Rippel et al. 2016).

Everything here serves the paper's claims, not a user of the loss: the
experiment config and runner (`experiment`: magnet vs softmax vs triplet on
CPU-sized data, `python -m magnet.main`), the study at convergence (`study`,
run by `python -m magnet.study_main`), its queue scripts (`queue_study`), the
README table (`readme_table`) and the validation split used for tuning
(`validation_split`). The library these build on is the `magnet` package
itself (`magnet.loss`, `magnet.cluster_index`, `magnet.sampler`,
`magnet.trainer`, ...), which never imports this subpackage.
"""

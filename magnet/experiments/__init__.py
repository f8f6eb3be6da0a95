"""The reproduction harness of the magnet-loss paper (Rippel et al. 2016).

Everything here serves the paper's claims, not a user of the loss:

* `experiment`: the experiment's config (`MagnetConfig`, which extends the
  library's `magnet.trainer.TrainSettings`) and `run` (magnet vs softmax vs
  triplet on CPU-sized data; `python -m magnet.main`);
* `verdicts`: the claims decided on one run or on paired seeds;
* `figures`: embedding snapshots and error curves;
* `study`, `study_phases`, `study_report`: the study at convergence (tuning
  grid, seeds, report; `python -m magnet.study_main`), `queue_study` its
  queue scripts and `readme_table` its summary table;
* `validation_split`: the validation split the grid tunes on.

The library these build on is the `magnet` package itself (`magnet.loss`,
`magnet.cluster_index`, `magnet.sampler`, `magnet.trainer`, ...), which never
imports this subpackage.
"""

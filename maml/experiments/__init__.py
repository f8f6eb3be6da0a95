"""The reproduction harness of the MAML paper's experiments (Finn et al. 2017).

Everything here serves the reproduction, not the library: the configs of the
paper's experiments (`configs`, `rl_configs`), one runner per table
(`sinusoid_experiment`, `sinusoid_baselines_experiment`,
`classification_experiment`, `rl_experiment`), the command flows and summaries
(`sinusoid_seeds`, `table1_summary`, `table2_report`,
`rl_seed_summary`, `seed_statistics`), figures, and the export of a finished run
directory (`export`, `rl_export`). The entry point is `python -m maml.main`.
Library modules (`maml.*`, `maml.rl.*`) never import this package.
"""

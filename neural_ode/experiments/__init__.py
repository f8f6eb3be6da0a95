"""The reproduction harness of the Neural ODE paper (Chen et al. 2018).

One module per experiment, each with a frozen config dataclass (the paper's
protocol, every choice's source named) and `run(config, output_dir)`, which
trains, evaluates and writes `results.json` and `report.md`:
`mnist_experiment` (Table 1), `memory_experiment`, `precision_experiment`
(Fig. 3), `spiral_experiment` (Table 2, Fig. 8), `spiral_seeds` (Table 2 over
seeds), `cnf_experiment` (Figs. 4-5, report in `cnf_report`),
`minibatch_experiment`; `run_export` exports a finished run's model for TF
Serving; `issue11_summary` and `block_workload` serve the reports and
benchmarks. `python -m neural_ode.main`
runs them. The library (`neural_ode`, `neural_ode.data`) never imports this
package.
"""

"""MAML for reinforcement learning (Finn et al. 2017, section 5.3): the library.

The Gaussian MLP policy (`policy`), the linear feature baseline (`baseline`),
TRPO (`trpo`), the 2D-navigation environments (`envs`) and the MuJoCo
half-cheetah (`cheetah`), trajectory sampling (`sampling`), the meta-learner
(`learner`) and the served policy (`serving`). The experiments that use them are
in `maml.experiments.rl_experiment`.
"""

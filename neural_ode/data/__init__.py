"""Data of the Neural ODE reproductions: the spirals of Table 2 (`spirals`), the
2-D densities of the normalizing-flow figures (`densities`), the MNIST input
pipeline's pieces (`mnist_input`) and the coordinate map of the sequence models
(`standardizer`). The MNIST files themselves are read by `common.data.mnist`.
"""

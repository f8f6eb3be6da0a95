"""Dataset loaders shared by the reproductions."""

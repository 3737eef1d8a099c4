"""Reading and writing structures, matrices and datasets."""

"""Rows in, rows out: chunked, vectorized, streaming; worker pool; dask client and worker."""

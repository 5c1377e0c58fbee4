"""The book's engine: layers, registry, kernels, spec records, expressions, compiler, runtime."""

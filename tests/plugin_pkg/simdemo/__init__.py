"""Example plugins for `simulator`: the `npu` device kind, the `replicas` strategy and the
`swish` layer kind, each declared as an entry point in pyproject.toml."""

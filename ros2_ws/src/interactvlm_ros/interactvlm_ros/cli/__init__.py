"""The ``interactvlm`` command line: one sub-module per sub-command."""

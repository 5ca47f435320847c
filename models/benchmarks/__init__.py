"""Real-data benchmarks, one module per dataset; the command is ``models.benchmark_command``."""

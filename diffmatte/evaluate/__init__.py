"""Evaluation: Composition-1k metrics, dataset readers, classical baselines, ``diffmatte eval``."""

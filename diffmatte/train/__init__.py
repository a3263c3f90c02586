"""Training: synthetic composites, real-data folders, DiffMatte losses and the resumable loop."""

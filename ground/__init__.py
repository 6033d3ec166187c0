"""Ground: what every package may import (errors, times and durations, strict JSON, the
process heap policy, secrets). It imports nothing of the project."""

"""Run-to-completion operations tasks: `python -m tasks NAME`."""

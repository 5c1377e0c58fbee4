"""The typer app: the only place that prints, creates a Console and turns errors into exit codes."""
